"""ctypes bindings over libheed for GPU benchmarks and tests side by side with PyTorch.

The library is loaded from $HEED_NATIVE_DIR, else ../../build/bin relative to this file.
`tensor(t)` turns a torch tensor into a heed_tensor (same data pointer: no copy); every call
returns through `check`, which raises HeedError with libheed's message on failure.
"""
import ctypes
import math
import os

HEED_F32, HEED_F16, HEED_BF16, HEED_I8, HEED_U4, HEED_U2, HEED_I32, HEED_U8 = range(8)
MAX_DIMS = 4


class HeedTensor(ctypes.Structure):
    _fields_ = [
        ("data", ctypes.c_void_p),
        ("dtype", ctypes.c_int32),
        ("ndim", ctypes.c_int32),
        ("shape", ctypes.c_int64 * MAX_DIMS),
        ("strides", ctypes.c_int64 * MAX_DIMS),
    ]


class HeedError(RuntimeError):
    def __init__(self, status, message):
        super().__init__(f"{status_name(status)}: {message}")
        self.status = status


def _load():
    here = os.path.dirname(os.path.abspath(__file__))
    folder = os.environ.get("HEED_NATIVE_DIR") or os.path.join(here, "..", "..", "build", "bin")
    path = os.path.join(folder, "libheed.so")
    if not os.path.exists(path):
        raise FileNotFoundError(f"libheed.so not found in {folder}; set HEED_NATIVE_DIR to the folder holding it")
    return ctypes.CDLL(path)


lib = _load()
_T = ctypes.POINTER(HeedTensor)
lib.heed_last_error.restype = ctypes.c_char_p
lib.heed_status_name.restype = ctypes.c_char_p
lib.heed_status_name.argtypes = [ctypes.c_int]
lib.heed_version.restype = ctypes.c_char_p
lib.heed_built_with_cuda.restype = ctypes.c_int32
lib.heed_attention_aggregate.argtypes = [_T, _T, _T, _T, ctypes.c_float, ctypes.c_int32, _T, _T]
lib.heed_flash_attention_forward.argtypes = [_T, _T, _T, ctypes.c_float, ctypes.c_int32, _T, _T]
lib.heed_block_sparse_attention_forward.argtypes = [_T, _T, _T, _T, ctypes.c_int32, ctypes.c_float, ctypes.c_int32, _T, _T]
lib.heed_block_mask_estimate.argtypes = [_T, _T, ctypes.c_int32, ctypes.c_float, ctypes.c_float, ctypes.c_int32, _T]
lib.heed_attention_cpu_config.argtypes = [ctypes.c_int32, ctypes.c_int32]


def status_name(status):
    return lib.heed_status_name(status).decode()


def check(status):
    if status != 0:
        raise HeedError(status, lib.heed_last_error().decode())


def dtype_of(t):
    """The heed_dtype of a torch tensor (torch is imported by the caller)."""
    import torch
    table = {torch.float32: HEED_F32, torch.float16: HEED_F16, torch.bfloat16: HEED_BF16, torch.int8: HEED_I8,
             torch.int32: HEED_I32, torch.uint8: HEED_U8, torch.bool: HEED_U8}
    if t.dtype not in table:
        raise TypeError(f"no heed dtype for {t.dtype}")
    return table[t.dtype]


def tensor(t, dtype=None):
    """A HeedTensor over a torch tensor's memory (strides in elements, as torch gives them).

    dtype overrides the element type for packed codes (HEED_U4, HEED_U2) held in a uint8 tensor;
    the caller then gives the logical shape through `shape=` in `raw_tensor` instead."""
    if t.dim() < 1 or t.dim() > MAX_DIMS:
        raise ValueError(f"heed tensors have 1..{MAX_DIMS} dimensions, got {t.dim()}")
    h = HeedTensor()
    h.data = t.data_ptr()
    h.dtype = dtype_of(t) if dtype is None else dtype
    h.ndim = t.dim()
    for i in range(t.dim()):
        h.shape[i] = t.shape[i]
        h.strides[i] = t.stride(i)
    return h


def raw_tensor(data_ptr, dtype, shape, strides=None):
    """A HeedTensor from a raw pointer, a heed dtype and a logical shape (strides None: contiguous)."""
    h = HeedTensor()
    h.data = data_ptr
    h.dtype = dtype
    h.ndim = len(shape)
    for i, s in enumerate(shape):
        h.shape[i] = s
        h.strides[i] = 0 if strides is None else strides[i]
    return h


def _p(h):
    return None if h is None else ctypes.byref(h)


def attention_aggregate(q, q_pos, k, k_pos, out, out_per_head=None, scale=0.0, causal=True):
    check(lib.heed_attention_aggregate(_p(tensor(q)), _p(tensor(q_pos)), _p(tensor(k)), _p(tensor(k_pos)), scale,
                                       int(causal), _p(tensor(out)),
                                       None if out_per_head is None else _p(tensor(out_per_head))))


def flash_attention_forward(q, k, v, o, lse=None, scale=0.0, causal=False):
    check(lib.heed_flash_attention_forward(_p(tensor(q)), _p(tensor(k)), _p(tensor(v)), scale, int(causal),
                                           _p(tensor(o)), None if lse is None else _p(tensor(lse))))


def block_sparse_attention_forward(q, k, v, mask, block, o, lse=None, scale=0.0, causal=False):
    check(lib.heed_block_sparse_attention_forward(_p(tensor(q)), _p(tensor(k)), _p(tensor(v)), _p(tensor(mask)),
                                                  block, scale, int(causal), _p(tensor(o)),
                                                  None if lse is None else _p(tensor(lse))))


def block_mask_estimate(q, k, block, coverage, mask, scale=0.0, causal=False):
    check(lib.heed_block_mask_estimate(_p(tensor(q)), _p(tensor(k)), block, coverage, scale, int(causal),
                                       _p(tensor(mask))))


def default_scale(d):
    return 1.0 / math.sqrt(d)
