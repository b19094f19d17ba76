#!/usr/bin/env bash
# Install Debian's Chromium for the dashboard's browser tests (idempotent: does nothing when present).
# Usage: scripts/install_chromium.sh        prints the browser path on success, exits 1 otherwise.
set -euo pipefail
for c in /usr/bin/chromium /usr/bin/chromium-browser; do
  if [ -x "$c" ]; then echo "$c"; exit 0; fi
done
SUDO=""
if [ "$(id -u)" != "0" ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else
    echo "chromium missing and not root (no sudo): install the Debian package 'chromium'" >&2; exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >&2
$SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >&2
if [ -x /usr/bin/chromium ]; then echo /usr/bin/chromium; exit 0; fi
echo "chromium install finished but /usr/bin/chromium is missing" >&2
exit 1
