#!/usr/bin/env bash
# Build the dashboard's browser assets and vendor them into the Python package.
# Output: src/quantedge/dashboard/static/ (index.html + assets/), committed, so running
# `quantedge dashboard` needs neither npm nor a CDN.  Needs node + npm (Vite 8 needs npm >= 11;
# with npm 10 pin vite@7 in frontend/package.json).
set -euo pipefail
cd "$(dirname "$0")/../frontend"
if [ -f package-lock.json ]; then npm ci --no-audit --no-fund; else npm install --no-audit --no-fund; fi
npx vite build
echo "built: $(cd ../src/quantedge/dashboard/static && find . -type f | sort | tr '\n' ' ')"
