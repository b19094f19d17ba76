"""Build the package's CUDA kernels for old and new GPUs on a machine without one.

    python scripts/cuda_build.py [--cc 5.0 --cc 9.0 ...] [--out build/cuda-ptx] [--json FILE]

Installs the pinned toolchain of scripts/cuda-toolchain.txt first (scripts/install_cuda_toolchain.sh,
idempotent), loads its NVVM and NVRTC before numba.cuda starts, then compiles every kernel
(:mod:`quantedge.signals.cuda_build`) to PTX for each compute capability and assembles it with the
toolkit's ptxas.  Prints a table (PTX size, compile time, registers, stack, spills); exits 1 when
any kernel does not build, 3 when the toolchain cannot be installed (e.g. no access to PyPI).
Default targets: 5.0 (Maxwell, the oldest CUDA 12 builds for), 6.0, 7.0, 7.5, 8.0, 9.0 (Hopper).
"""

from __future__ import annotations

import argparse
import ctypes
import importlib.metadata as md
import json
import os
import site
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CCS = ["5.0", "6.0", "7.0", "7.5", "8.0", "9.0"]


def load_toolchain(folder: Path) -> dict[str, str]:
    """Put the toolchain's packages first on the path (their .pth files make ``numba.cuda`` numba-cuda;
    first, so a numba-cuda elsewhere in the environment cannot stand in for the pinned one) and load
    its NVVM and NVRTC, so numba-cuda uses them rather than a system CUDA of another version."""
    if "numba.cuda" in sys.modules:
        raise RuntimeError("numba.cuda was imported before the toolchain was loaded")
    before = list(sys.path)
    site.addsitedir(str(folder))
    sys.path[:] = [p for p in sys.path if p not in before] + before
    libs = {"nvvm": folder / "nvidia/cuda_nvcc/nvvm/lib64/libnvvm.so",
            "nvrtc": folder / "nvidia/cuda_nvrtc/lib/libnvrtc.so.12"}
    for name, path in libs.items():
        if not path.exists():
            raise FileNotFoundError(f"{name} not in the toolchain folder: {path}")
        ctypes.CDLL(str(path), mode=ctypes.RTLD_GLOBAL)
    return {k: str(v) for k, v in libs.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cc", action="append", help="compute capability, e.g. 5.0 (repeatable)")
    ap.add_argument("--kernel", action="append", help="build only this kernel (repeatable)")
    ap.add_argument("--out", type=Path, default=REPO / "build" / "cuda-ptx", help="folder for the PTX files")
    ap.add_argument("--json", type=Path, help="write the results here")
    ap.add_argument("--toolchain", type=Path, help="an installed toolchain folder (default: install it)")
    a = ap.parse_args(argv)
    ccs = []
    for text in a.cc or DEFAULT_CCS:
        try:
            major, minor = (int(x) for x in text.split("."))
        except ValueError:
            ap.error(f"--cc: expected MAJOR.MINOR such as 7.5, got {text!r}")
        ccs.append((major, minor))
    folder = a.toolchain
    if folder is None:
        installer = REPO / "scripts" / "install_cuda_toolchain.sh"
        proc = subprocess.run(["bash", str(installer), sys.executable], capture_output=True, text=True)
        if proc.returncode != 0:
            why = proc.stderr[-2000:]
            print(f"cuda_build: the toolchain could not be installed:\n{why}", file=sys.stderr)
            return 3
        folder = Path(proc.stdout.strip().splitlines()[-1])
    libs = load_toolchain(folder)
    os.environ.pop("NUMBA_ENABLE_CUDASIM", None)  # the simulator has no compiler to build with

    import numba
    import numba.cuda

    from quantedge.signals.cuda_build import build

    cuda_file = numba.cuda.__file__
    if not Path(cuda_file).resolve().is_relative_to(folder.resolve()):
        print(f"cuda_build: numba.cuda came from {cuda_file}, not from the toolchain in {folder}",
              file=sys.stderr)
        return 1
    version = md.version("numba-cuda")
    print(f"numba {numba.__version__}, numba-cuda {version} ({cuda_file}), NVVM {libs['nvvm']}")
    t0 = time.perf_counter()
    try:
        results = build(ccs, a.out, ptxas=folder / "nvidia/cuda_nvcc/bin/ptxas", only=a.kernel)
    except Exception as e:  # report which kernel and target failed, then fail the run
        print(f"cuda_build: FAILED: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    w = max([16] + [len(r.kernel) for r in results])
    print(f"{'kernel':<{w}} {'cc':>4} {'PTX bytes':>10} {'compile s':>9} {'regs':>5} {'stack':>6} "
          f"{'spill st':>8} {'spill ld':>8}")
    for r in results:
        print(f"{r.kernel:<{w}} {r.cc:>4} {r.ptx_bytes:>10,} {r.compile_s:>9.1f} {r.registers!s:>5} "
              f"{r.stack_bytes!s:>6} {r.spill_stores!s:>8} {r.spill_loads!s:>8}")
    print(f"{len(results)} builds in {time.perf_counter() - t0:.1f} s; PTX in {a.out}")
    if a.json:
        a.json.write_text(json.dumps({"numba": numba.__version__, "numba_cuda": version,
                                      "toolchain": str(folder), "cuda_target": cuda_file, "libs": libs,
                                      "results": [asdict(r) for r in results]}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
