#!/usr/bin/env bash
# Install the pinned CUDA toolchain of scripts/cuda-toolchain.txt (numba-cuda, cuda-bindings, NVRTC,
# NVVM, ptxas: ~380 MB from PyPI, no driver, no GPU) into a folder of its own, so the project's
# environment keeps Numba's own CUDA target and its simulator.  Idempotent: does nothing when the
# folder already holds this list (its .installed stamp is the list's hash); one install at a time
# (flock), built beside the folder and moved in place, so a failed install leaves no half folder.
# Usage: scripts/install_cuda_toolchain.sh [PYTHON]   prints the folder on success.
# QUANTEDGE_CUDA_TOOLCHAIN overrides the folder (default build/cuda-toolchain).
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
PY="${1:-$REPO/.venv/bin/python}"
DIR="${QUANTEDGE_CUDA_TOOLCHAIN:-$REPO/build/cuda-toolchain}"
REQ="$REPO/scripts/cuda-toolchain.txt"
WANT="$(sha256sum "$REQ" | cut -d' ' -f1)"
mkdir -p "$(dirname "$DIR")"
exec 9>"$DIR.lock"
flock 9
if [ -f "$DIR/.installed" ] && [ "$(cat "$DIR/.installed")" = "$WANT" ]; then echo "$DIR"; exit 0; fi
if [ -d "$DIR" ] && [ ! -f "$DIR/.installed" ] && [ -n "$(ls -A "$DIR")" ]; then
  echo "$DIR exists and was not made by this script (no .installed stamp): not replacing it" >&2
  exit 1
fi
rm -rf "$DIR.tmp"
"$PY" -m pip install -q --disable-pip-version-check --no-deps --target "$DIR.tmp" -r "$REQ" >&2
echo "$WANT" > "$DIR.tmp/.installed"
rm -rf "$DIR"
mv "$DIR.tmp" "$DIR"
echo "$DIR"
