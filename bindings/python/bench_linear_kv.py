"""GPU benchmark rows for PART B's kernels: causal linear attention and int4 decode attention
over a quantized KV cache, side by side with PyTorch in the same process.

    HEED_NATIVE_DIR=build/bin python3 bindings/python/bench_linear_kv.py

`rows(heed, torch)` returns the rows (name, shape, ours_ms, peer, peer_ms, ratio, note) that
bench_kernels.py prints; run alone, this file prints its own table. ratio = peer_ms / ours_ms
(above 1: we are faster). Each timing is the median over repeats of a batch of back-to-back
calls between CUDA events, so host launch costs overlap device work as in real use.
"""
import ctypes
import math
import os
import sys


def _prototypes(heed):
    """ctypes prototypes of heed/linear_attention.h and heed/kv_quant.h on heed.lib."""
    T = ctypes.POINTER(heed.HeedTensor)

    class HeedQuantKv(ctypes.Structure):
        _fields_ = [("bits", ctypes.c_int32), ("group_size", ctypes.c_int32)] + [
            (n, heed.HeedTensor) for n in ("k_codes", "k_scale", "k_zero", "v_codes", "v_scale", "v_zero",
                                           "salient_slot", "salient_count", "salient_k", "salient_v")]

    Q = ctypes.POINTER(HeedQuantKv)
    lib = heed.lib
    lib.heed_linear_attention_causal.argtypes = [T, T, T, T, T, T, ctypes.c_int32, ctypes.c_int32, ctypes.c_float,
                                                 T, T, T]
    lib.heed_quant_kv_sizes.argtypes = [ctypes.c_int64] * 5 + [ctypes.c_int32, ctypes.c_int32, ctypes.c_int64, Q,
                                                               ctypes.POINTER(ctypes.c_size_t),
                                                               ctypes.POINTER(ctypes.c_size_t)]
    lib.heed_kv_quantize.argtypes = [T, T, T, Q]
    lib.heed_kv_dequantize.argtypes = [Q, T, T]
    lib.heed_quant_decode_attention.argtypes = [T, Q, ctypes.c_int32, ctypes.c_float, ctypes.c_int32, T]
    return HeedQuantKv


class QuantCache:
    """A heed_quant_kv whose ten tensors live in torch uint8 buffers on the GPU."""

    NAMES = ("k_codes", "k_scale", "k_zero", "v_codes", "v_scale", "v_zero", "salient_slot", "salient_count",
             "salient_k", "salient_v")

    def __init__(self, heed, torch, struct_type, B, Hkv, N, d, bits, group, salient_capacity=0):
        self.c = struct_type()
        sizes = (ctypes.c_size_t * 10)()
        heed.check(heed.lib.heed_quant_kv_sizes(B, Hkv, N, d, d, bits, group, salient_capacity,
                                                ctypes.byref(self.c), sizes, None))
        self.buffers = []
        for i, name in enumerate(self.NAMES):
            buf = torch.empty(max(int(sizes[i]), 16), dtype=torch.uint8, device="cuda")
            self.buffers.append(buf)
            getattr(self.c, name).data = buf.data_ptr()
        self.bytes = [int(s) for s in sizes]

    def read_bytes(self):
        """Bytes a decode reads: codes, scales and zeros of K and V, and the slot map."""
        return sum(self.bytes[i] for i in range(7))


def _time(torch, fn, calls=20, reps=7):
    """Median milliseconds per call over `reps` batches of `calls` back-to-back calls."""
    fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        for _ in range(calls):
            fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b) / calls)
    times.sort()
    return times[len(times) // 2]


def _row(name, shape, ours, peer, peer_ms, note):
    return {"name": name, "shape": shape, "ours_ms": ours, "peer": peer, "peer_ms": peer_ms,
            "ratio": None if ours is None or peer_ms is None else peer_ms / ours, "note": note}


def _rel(x, ref):
    x, ref = x.float(), ref.float()
    return ((x - ref).norm() / ref.norm().clamp_min(1e-30)).item()


def copy_bandwidth(torch):
    """Device-to-device copy, bytes read + written per second (GB/s)."""
    n = 1 << 30
    src = torch.empty(n, dtype=torch.uint8, device="cuda")
    dst = torch.empty_like(src)
    ms = _time(torch, lambda: dst.copy_(src), calls=5, reps=5)
    del src, dst
    return 2 * n / ms / 1e6


def torch_linear_chunked(torch, q, k, v, C=64):
    """Causal linear attention (no decay, identity map), chunked like ours: exact inside a chunk,
    earlier chunks through prefix sums of K^T V. fp32, batched matmuls, no Python loop."""
    B, H, N, d = q.shape
    nc = N // C
    qc, kc, vc = (x.float().reshape(B, H, nc, C, x.shape[-1]) for x in (q, k, v))
    kv = kc.transpose(-1, -2) @ vc                          # [B,H,nc,d,dv] per chunk
    state = torch.cumsum(kv, dim=2) - kv                    # exclusive prefix: chunks before
    mask = torch.ones(C, C, device=q.device).tril()
    intra = ((qc @ kc.transpose(-1, -2)) * mask) @ vc
    return (intra + qc @ state).reshape(B, H, N, -1)


def linear_rows(heed, torch):
    out = []
    B, H, d = 1, 16, 128
    per_token = {}
    for N in (8192, 32768, 131072):
        g = torch.Generator(device="cuda").manual_seed(N)
        q = torch.randn(B, H, N, d, device="cuda", generator=g, dtype=torch.float16) / math.sqrt(d)
        k = torch.randn(B, H, N, d, device="cuda", generator=g, dtype=torch.float16) / math.sqrt(d)
        v = torch.randn(B, H, N, d, device="cuda", generator=g, dtype=torch.float16)
        o = torch.empty(B, H, N, d, device="cuda", dtype=torch.float32)
        st = torch.empty(B, H, d, d, device="cuda", dtype=torch.float32)
        tq, tk, tv, to, ts = (heed.tensor(x) for x in (q, k, v, o, st))

        def ours():
            heed.check(heed.lib.heed_linear_attention_causal(ctypes.byref(tq), ctypes.byref(tk), ctypes.byref(tv),
                                                             None, None, None, 0, 0, 0.0, ctypes.byref(to),
                                                             ctypes.byref(ts), None))

        calls = 3 if N <= 32768 else 1
        os.environ["HEED_LINEAR_PARTS"] = "1"
        one_pass_ms = _time(torch, ours, calls=calls, reps=3)  # one block walks each head's chunks
        os.environ.pop("HEED_LINEAR_PARTS")
        ours_ms = _time(torch, ours, calls=calls, reps=3)
        per_token[N] = ours_ms / N
        shape = f"B{B} H{H} N{N} d{d} f16"
        try:
            ref = torch_linear_chunked(torch, q, k, v)
            err = _rel(o, ref)
            peer_ms = _time(torch, lambda: torch_linear_chunked(torch, q, k, v), calls=1, reps=3)
            out.append(_row("linear_attn", shape, ours_ms, "torch chunked f32", peer_ms,
                            f"err {err:.1e}; {1e6 * ours_ms / N:.1f} ns/token; one pass {one_pass_ms:.2f} ms"))
            del ref
        except torch.OutOfMemoryError:
            out.append(_row("linear_attn", shape, ours_ms, "torch chunked f32", None, "peer out of memory"))
        torch.cuda.empty_cache()
        from torch.nn.attention import SDPBackend, sdpa_kernel
        with sdpa_kernel([SDPBackend.FLASH_ATTENTION]):
            sdpa = lambda: torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)  # noqa: E731
            sdpa_ms = _time(torch, sdpa, calls=1, reps=3)
        out.append(_row("linear_attn", shape, ours_ms, "SDPA flash causal", sdpa_ms, "softmax attention, same N"))
        del q, k, v, o, st
        torch.cuda.empty_cache()
    growth = per_token[131072] / per_token[8192]
    out.append(_row("linear_attn", "per-token 128K / 8K", None, "-", None,
                    f"{growth:.2f}x (target <= 1.2x, flat)"))
    return out


def decode_rows(heed, torch, QK, copy_gbps, few=False):
    out = []
    H, Hkv, d, group = 32, 8, 128, 64
    from torch.nn.attention import SDPBackend, sdpa_kernel
    # (bits, B, N): the issue's shape (B8 N64K) in int4 and int8, and one query over long contexts.
    configs = [(4, 1, 4096), (4, 1, 65536), (4, 1, 262144), (4, 1, 1048576), (4, 8, 4096), (4, 8, 16384),
               (4, 8, 65536), (8, 1, 65536), (8, 8, 65536)]
    if few:
        configs = [(4, 8, 65536), (8, 8, 65536), (4, 1, 65536), (4, 1, 1048576)]
    for bits, B, N in configs:
        g = torch.Generator(device="cuda").manual_seed(B * N + bits)
        q = torch.randn(B, H, 1, d, device="cuda", generator=g, dtype=torch.float16)
        k = torch.randn(B, Hkv, N, d, device="cuda", generator=g, dtype=torch.float16)
        v = torch.randn(B, Hkv, N, d, device="cuda", generator=g, dtype=torch.float16)
        cache = QuantCache(heed, torch, QK, B, Hkv, N, d, bits, group)
        tk, tv = heed.tensor(k), heed.tensor(v)
        heed.check(heed.lib.heed_kv_quantize(ctypes.byref(tk), ctypes.byref(tv), None, ctypes.byref(cache.c)))
        o = torch.empty(B, H, 1, d, device="cuda", dtype=torch.float16)
        tq, to = heed.tensor(q), heed.tensor(o)

        def ours():
            heed.check(heed.lib.heed_quant_decode_attention(ctypes.byref(tq), ctypes.byref(cache.c), 1, 0.0, 0,
                                                            ctypes.byref(to)))

        ours_ms = _time(torch, ours, calls=50, reps=7)
        # Accuracy: against SDPA (float32) on the dequantized cache.
        kd = torch.empty(B, Hkv, N, d, device="cuda", dtype=torch.float32)
        vd = torch.empty_like(kd)
        tkd, tvd = heed.tensor(kd), heed.tensor(vd)
        heed.check(heed.lib.heed_kv_dequantize(ctypes.byref(cache.c), ctypes.byref(tkd), ctypes.byref(tvd)))
        # One query row per head: the GQA group becomes the query rows of its kv head.
        grouped = lambda x: x.view(B, Hkv, H // Hkv, d)  # noqa: E731
        ref = torch.nn.functional.scaled_dot_product_attention(grouped(q.float()), kd, vd)
        err = _rel(grouped(o), ref)
        del kd, vd, ref
        with sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION]):
            qg = grouped(q)
            sdpa = lambda: torch.nn.functional.scaled_dot_product_attention(qg, k, v)  # noqa: E731
            peer_ms = _time(torch, sdpa, calls=50, reps=7)
        moved = cache.read_bytes() + q.numel() * 2 + o.numel() * 2
        gbps = moved / ours_ms / 1e6
        peer_gbps = (2 * k.numel() * 2 + q.numel() * 2 + o.numel() * 2) / peer_ms / 1e6
        out.append(_row(f"int{bits}_decode", f"B{B} H{H}/{Hkv} N{N} d{d} g{group}", ours_ms, "SDPA fp16 KV", peer_ms,
                        f"{gbps:.0f} GB/s = {100 * gbps / copy_gbps:.0f}% of copy; SDPA {peer_gbps:.0f} GB/s; "
                        f"err vs dequantized {err:.1e}"))
        del q, k, v, o, cache
        torch.cuda.empty_cache()
    return out


def rows(heed, torch):
    QK = _prototypes(heed)
    copy_gbps = copy_bandwidth(torch)
    out = [_row("copy_bandwidth", "1 GiB d2d", None, "-", None, f"{copy_gbps:.0f} GB/s (read + write)")]
    few = "--few" in sys.argv
    for part in (lambda: decode_rows(heed, torch, QK, copy_gbps, few), lambda: linear_rows(heed, torch)):
        try:
            got = part()
        except Exception as e:  # noqa: BLE001 - one failing part must not hide the other
            got = [_row("part_b", "-", None, "-", None, f"FAILED: {type(e).__name__}: {e}"[:200])]
        for r in got:
            print("row:", r, flush=True)
        out += got
    return out


def main():
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import torch
    import heed
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name()}, libheed {heed.lib.heed_version().decode()}")
    table = rows(heed, torch)
    fmt = lambda x, s: "-" if x is None else format(x, s)  # noqa: E731
    head = f"{'kernel':<15} {'shape':<34} {'ours ms':>9} {'peer':<19} {'peer ms':>9} {'ratio':>6}  note"
    print(head)
    print("-" * len(head))
    for r in table:
        print(f"{r['name']:<15} {r['shape']:<34} {fmt(r['ours_ms'], '9.4f')} {str(r['peer']):<19} "
              f"{fmt(r['peer_ms'], '9.4f')} {fmt(r['ratio'], '6.2f')}  {r['note']}")


if __name__ == "__main__":
    main()
