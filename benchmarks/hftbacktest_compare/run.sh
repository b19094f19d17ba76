#!/usr/bin/env bash
# One command: QuantEdge books vs hftbacktest on a real LOBSTER day (same machine, same run).
#   bash benchmarks/hftbacktest_compare/run.sh [LOBSTER zip] [--repeats N] [--json OUT]
# Creates hftbacktest's own virtualenv (benchmarks/.venv-hftbacktest, git-ignored) on first use:
# hftbacktest pins its own numpy/numba, so it must not share the project's environment.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HBT_VENV="$ROOT/benchmarks/.venv-hftbacktest"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
if [ ! -x "$HBT_VENV/bin/python" ] || ! "$HBT_VENV/bin/python" -c "import hftbacktest" 2>/dev/null; then
    python3.11 -m venv "$HBT_VENV" 2>/dev/null || python3 -m venv "$HBT_VENV"
    "$HBT_VENV/bin/pip" install --quiet "hftbacktest==${HFTBACKTEST_VERSION:-2.4.4}"
fi
exec "$PY" "$ROOT/benchmarks/hftbacktest_compare/compare.py" --hbt-python "$HBT_VENV/bin/python" "$@"
