"""A software prefetch for Numba kernels: start loading one element's cache line of an array.

With thousands of symbols every event touches a cold symbol's state; the fused loops ask for the
state of the event a few positions ahead so the loads overlap instead of stalling one by one.
A prefetch never changes results (it is only a hint to the CPU).
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic


def _prefetch_intrinsic(name: str, rw: int, doc: str):
    """The intrinsic for one access kind (llvm.prefetch: 0 = read, 1 = write)."""

    def impl(typingctx, arr, idx):
        if not (isinstance(arr, types.Array) and isinstance(idx, types.BaseTuple) and len(idx) == arr.ndim
                and all(isinstance(t, types.Integer) for t in idx)):
            return None
        sig = types.void(arr, idx)

        def codegen(context, builder, signature, args):
            aryty = signature.args[0]
            ary = context.make_array(aryty)(context, builder, args[0])
            raw = cgutils.unpack_tuple(builder, args[1], len(signature.args[1]))
            inds = [context.cast(builder, v, t, types.intp)
                    for v, t in zip(raw, signature.args[1], strict=True)]
            ptr = cgutils.get_item_pointer2(context, builder, ary.data,
                                            cgutils.unpack_tuple(builder, ary.shape),
                                            cgutils.unpack_tuple(builder, ary.strides), aryty.layout, inds,
                                            wraparound=False, boundscheck=False)
            i8p = ir.IntType(8).as_pointer()
            i32 = ir.IntType(32)
            fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
            fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")
            builder.call(fn, [builder.bitcast(ptr, i8p), i32(rw), i32(3), i32(1)])  # kind, keep, data
            return context.get_dummy_value()

        return sig, codegen

    impl.__name__ = impl.__qualname__ = name
    impl.__doc__ = doc
    return intrinsic(impl)


prefetch = _prefetch_intrinsic(
    "prefetch", 0, "Hint that ``arr[idx]`` (``idx``: one integer per dimension) will be read soon.")
prefetch_write = _prefetch_intrinsic(
    "prefetch_write", 1, "Hint that ``arr[idx]`` will be written soon (the line is fetched for ownership, so "
    "the stores do not wait for it).")
