"""Build every CUDA kernel of the package for chosen GPU generations, on a machine without a GPU.

The tests run the kernels under the CUDA simulator, which executes them as Python: code the CUDA
compiler refuses (a NumPy call it does not support, a CPU-only overload, an object it cannot type)
passes there and fails only on the user's device.  This module compiles the real kernels, with the
argument types of their real launches, through NVVM to PTX for a compute capability, and assembles
the PTX with ``ptxas`` for that architecture, which also reports registers and spills per thread.

It needs numba-cuda and a CUDA toolkit's NVVM, NVRTC and ptxas, but no driver: ``scripts/cuda_build.py``
installs a pinned toolkit from PyPI (``scripts/install_cuda_toolchain.sh``) and loads it before
numba.cuda starts; import this module only after that.  One seam of numba-cuda is replaced while
compiling: a device function asks the current device for its compute capability, and there is none,
so :func:`_target` answers with the one being built.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class KernelSpec:
    """A kernel as launched: its Python source function and the numba types of its arguments."""

    name: str
    py_func: Callable
    argtypes: tuple


@dataclass
class BuildResult:
    """One kernel built for one compute capability."""

    kernel: str
    cc: str
    ptx_bytes: int
    compile_s: float
    registers: int | None = None  # per thread, from ptxas -v (None: not assembled)
    spill_stores: int | None = None  # bytes
    spill_loads: int | None = None
    stack_bytes: int | None = None


def kernel_specs() -> list[KernelSpec]:
    """Every kernel :mod:`quantedge.signals.gpu`, :mod:`quantedge.signals.gpu_path` and
    :mod:`quantedge.signals.gpu_prep` launch, typed
    from arrays built the way their launches build them.  ``GpuPath`` takes the book mode as an
    argument, so its three modes share one kernel; their argument types are checked to agree."""
    from numba import typeof

    from quantedge.book.l2 import L2Book
    from quantedge.book.l3 import L3Book
    from quantedge.events import EVENT_DTYPE
    from quantedge.features.state import NF, FeatureState
    from quantedge.signals import gpu, gpu_path, gpu_prep
    from quantedge.signals.config import load_config
    from quantedge.signals.logic import N_SIG, N_ST
    from quantedge.signals.types import N_EXPLAIN

    step, init, gather = gpu._kernels()
    n, rows = 4, 8
    st = np.zeros((n, N_ST), order="F")  # GpuSignals keeps the state column-major on the device
    cfg = np.ascontiguousarray(load_config().vector(), np.float64)
    expl = np.zeros((rows, N_SIG, N_EXPLAIN))
    i64 = np.zeros(rows, np.int64)
    step_args = (st, cfg, i64, np.zeros((rows, NF)), i64, np.zeros(n + 1, np.int64), np.zeros((rows, N_SIG)),
                 np.zeros((rows, N_SIG), np.uint8), 0.0, np.zeros(rows, np.uint8), expl)
    specs = [
        KernelSpec("signals.step", step.py_func, tuple(typeof(a) for a in step_args)),
        KernelSpec("signals.init", init.py_func, (typeof(st),)),
        KernelSpec("signals.gather", gather.py_func, (typeof(expl), typeof(i64), typeof(expl))),
    ]
    features = FeatureState.allocate(n, n_levels=10, cadence_ns=1_000_000_000)
    books = {"l3": L3Book.allocate(n, capacity=16, window=5, max_orders=1024),
             "l2": L2Book.allocate(n, capacity=16, tick=1), "nbbo": None}
    ev = np.zeros(rows, EVENT_DTYPE).view(gpu_path.aligned(EVENT_DTYPE))
    seen: dict[tuple, str] = {}
    for mode, book in books.items():
        gp = gpu_path.GpuPath(mode, book, features, device="cpu", orders_per_symbol=1024, row_capacity=rows)
        gp.d["st"] = np.asfortranarray(gp.d["st"])  # column-major on the device, as GpuPath copies it
        args = gp.kernel_args(ev, i64, np.zeros(n + 1, np.int64))
        seen.setdefault(tuple(typeof(a) for a in args), mode)
    if len(seen) != 1:
        modes = list(seen.values())
        raise AssertionError(f"GpuPath's modes launch its kernel with different argument types: {modes}")
    path = gpu_path.cuda_kernel()
    specs.append(KernelSpec("gpu_path", path.py_func, next(iter(seen))))
    # the device-side chunk preparation (GpuPath(prep="device")): every argument an int64 or int64 array
    a, i = typeof(np.zeros(8, np.int64)), typeof(1)
    prep_args = {"k_count": (a, i, i, i, i, a, a, a), "k_seg_total": (a, i, i, a, i),
                 "k_scan_totals": (a, i, a), "k_seg_scan": (a, i, i, a, i), "k_take_offsets": (a, i, a),
                 "k_place": (a, i, i, i, a, a, a), "k_rows": (a, a, a, i, i, a, a, a),
                 "k_rank": (i, i, a, a, a, a, i)}
    for name, kernel in gpu_prep.kernels().items():
        specs.append(KernelSpec(f"gpu_prep.{name}", kernel.py_func, prep_args[name]))
    # a kernel added to any of the modules must be added here too
    launched = ({f"signals.{k}" for k in gpu._KERNELS} | ({"gpu_path"} if gpu_path._KERNEL else set())
                | {f"gpu_prep.{k}" for k in gpu_prep._COMPILED})
    if launched != {s.name for s in specs}:
        raise AssertionError(f"kernels launched {sorted(launched)} but specified {[s.name for s in specs]}")
    return specs


@contextlib.contextmanager
def _target(cc: tuple[int, int]) -> Iterator[None]:
    """Device functions compile for ``cc`` (numba-cuda asks the current device, and there is none)."""
    import numba.cuda.dispatcher as dispatcher

    class _Device:
        compute_capability = cc

    real = dispatcher.get_current_device
    dispatcher.get_current_device = lambda: _Device
    try:
        yield
    finally:
        dispatcher.get_current_device = real


def _clear_device_functions(specs: list[KernelSpec]) -> None:
    """Forget the device functions' compiled code, so the next target compiles them anew (their cache
    is keyed by argument types only, not by the compute capability they were built for)."""
    from numba.cuda.dispatcher import CUDADispatcher

    seen: set[int] = set()

    def walk(fn: Callable) -> None:
        refs = dict(fn.__globals__)
        for cell_name, cell in zip(fn.__code__.co_freevars, fn.__closure__ or (), strict=True):
            refs[cell_name] = cell.cell_contents
        for name in fn.__code__.co_names + fn.__code__.co_freevars:
            obj = refs.get(name)
            if isinstance(obj, CUDADispatcher) and id(obj) not in seen:
                seen.add(id(obj))
                obj.overloads.clear()
                walk(obj.py_func)

    for spec in specs:
        walk(spec.py_func)


_PTXAS_USED = re.compile(r"Used (\d+) registers")
_PTXAS_SPILL = re.compile(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads")


def assemble(ptxas: Path, ptx_file: Path, cc: tuple[int, int]) -> dict[str, int]:
    """``ptxas -v`` the PTX for sm_<cc>: registers, stack frame and spills of the kernel (an error if
    it does not assemble)."""
    arch = f"sm_{cc[0]}{cc[1]}"
    proc = subprocess.run([str(ptxas), f"-arch={arch}", "-v", str(ptx_file), "-o", "/dev/null"],
                          capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"ptxas could not assemble {ptx_file.name} for {arch}:\n{proc.stderr[-2000:]}")
    used = _PTXAS_USED.findall(proc.stderr)
    spill = _PTXAS_SPILL.findall(proc.stderr)
    out = {"registers": max(int(u) for u in used) if used else 0}
    if spill:
        out["stack_bytes"] = max(int(s[0]) for s in spill)
        out["spill_stores"] = max(int(s[1]) for s in spill)
        out["spill_loads"] = max(int(s[2]) for s in spill)
    return out


def build(ccs: list[tuple[int, int]], out_dir: Path, ptxas: Path | None = None,
          only: list[str] | None = None) -> list[BuildResult]:
    """Compile every kernel (or those named in ``only``) to ``out_dir/<kernel>.sm_<cc>.ptx`` for each
    compute capability, and assemble it with ``ptxas`` when given."""
    from numba import cuda

    every = kernel_specs()
    specs = [s for s in every if not only or s.name in only]
    if only and len(specs) != len(set(only)):
        raise ValueError(f"unknown kernel in {only}; the kernels are {[s.name for s in every]}")
    out_dir.mkdir(parents=True, exist_ok=True)
    results = []
    for cc in ccs:
        _clear_device_functions(specs)
        with _target(cc):
            for spec in specs:
                t0 = time.perf_counter()
                ptx, _ = cuda.compile_ptx(spec.py_func, spec.argtypes, cc=cc)
                res = BuildResult(spec.name, f"{cc[0]}.{cc[1]}", len(ptx), round(time.perf_counter() - t0, 2))
                target = re.search(r"^\.target\s+(\S+)", ptx, re.M)
                if target is None or target.group(1) != f"sm_{cc[0]}{cc[1]}":
                    raise RuntimeError(f"{spec.name}: PTX for cc {cc} targets {target and target.group(1)}")
                path = out_dir / f"{spec.name}.sm_{cc[0]}{cc[1]}.ptx"
                path.write_text(ptx)
                if ptxas is not None:
                    for k, v in assemble(ptxas, path, cc).items():
                        setattr(res, k, v)
                results.append(res)
    return results
