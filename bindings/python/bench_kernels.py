"""GPU benchmark of libheed's attention kernels side by side with PyTorch, in one process.

    HEED_NATIVE_DIR=build/bin python3 bindings/python/bench_kernels.py [--quick]

Prints one table: our time, TFLOP/s where it means something, the peer measured in the same run
(SDPA flash backend, dense SDPA, FlexAttention, eager softmax), and ratio = peer_ms / ours_ms
(above 1: we are faster). Rows from bench_linear_kv.py (PART B) are added when that file is here.
Each result is also checked against the peer (max relative error in the note).
"""
import importlib.util
import json
import math
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import heed  # noqa: E402

QUICK = "--quick" in sys.argv
# --parts=flash,sparse,aggregate,partb,flex picks parts; --label=X tags the rows (e.g. a kernel variant
# chosen through HEED_FLASH_VARIANT); --few keeps the largest sizes only.
PARTS = next((a.split("=", 1)[1].split(",") for a in sys.argv if a.startswith("--parts=")),
             ["flash", "sparse", "aggregate", "partb", "flex"])
LABEL = next((a.split("=", 1)[1] for a in sys.argv if a.startswith("--label=")), "")
FEW = "--few" in sys.argv


def bench(fn, min_reps=5, max_reps=50, budget_ms=400.0):
    """Median milliseconds of fn() with CUDA events after warm-up."""
    for _ in range(2):
        fn()
    torch.cuda.synchronize()
    times = []
    start_all = time.perf_counter()
    while len(times) < max_reps:
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
        if len(times) >= min_reps and (time.perf_counter() - start_all) * 1e3 > budget_ms:
            break
    times.sort()
    return times[len(times) // 2]


def rel_err(x, ref):
    x, ref = x.float(), ref.float()
    return ((x - ref).norm() / ref.norm().clamp_min(1e-30)).item()


def row(name, shape, ours_ms, flops, peer, peer_ms, note=""):
    return {"name": name, "shape": shape, "ours_ms": ours_ms,
            "tflops": None if flops is None or ours_ms is None else flops / ours_ms / 1e9,
            "peer": peer, "peer_ms": peer_ms,
            "ratio": None if ours_ms is None or peer_ms is None else peer_ms / ours_ms, "note": note}


def sdpa_flash(q, k, v, causal):
    from torch.nn.attention import SDPBackend, sdpa_kernel
    with sdpa_kernel([SDPBackend.FLASH_ATTENTION]):
        return torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=causal)


def sdpa_cudnn(q, k, v, causal):
    from torch.nn.attention import SDPBackend, sdpa_kernel
    with sdpa_kernel([SDPBackend.CUDNN_ATTENTION]):
        return torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=causal)


def flash_rows():
    out = []
    H, Hkv, d = 32, 8, 128
    configs = [(8, 1024, False), (4, 2048, False), (2, 4096, False), (1, 8192, False), (1, 16384, False),
               (2, 4096, True), (1, 16384, True)]
    if QUICK:
        configs = configs[:1]
    if FEW:
        configs = [(2, 4096, False), (1, 16384, False), (1, 16384, True)]
    for B, N, causal in configs:
        q = torch.randn(B, H, N, d, device="cuda", dtype=torch.bfloat16)
        k = torch.randn(B, Hkv, N, d, device="cuda", dtype=torch.bfloat16)
        v = torch.randn(B, Hkv, N, d, device="cuda", dtype=torch.bfloat16)
        o = torch.empty_like(q)
        lse = torch.empty(B, H, N, device="cuda", dtype=torch.float32)
        # The peer gets K/V expanded to H heads (outside the timing), so both do the same FLOPs.
        ke, ve = k.repeat_interleave(H // Hkv, dim=1), v.repeat_interleave(H // Hkv, dim=1)
        ours = bench(lambda: heed.flash_attention_forward(q, k, v, o, lse, causal=causal))
        peer = bench(lambda: sdpa_flash(q, ke, ve, causal))
        err = rel_err(o, sdpa_flash(q, ke, ve, causal))
        flops = 4 * B * H * N * N * d * (0.5 if causal else 1.0)
        name, shape = "flash fwd" + (" causal" if causal else ""), f"B{B} H{H}/{Hkv} N{N} d{d} bf16"
        out.append(row(name, shape, ours, flops, "SDPA flash", peer, f"err {err:.1e}"))
        try:  # the fastest backend a PyTorch user gets on Hopper, beside
            cudnn = bench(lambda: sdpa_cudnn(q, ke, ve, causal))
            out.append(row(name, shape, ours, flops, "SDPA cuDNN", cudnn, f"cuDNN {flops / cudnn / 1e9:.0f} TFLOP/s"))
        except RuntimeError as e:
            out.append(row(name, shape, ours, flops, "SDPA cuDNN", None, f"not available: {e}"[:80]))
        del q, k, v, o, lse, ke, ve
        torch.cuda.empty_cache()
    return out


_SPARSE_CASES = []  # (N, ours_ms, flops) for the FlexAttention rows


def random_block_mask(H, nb, density, seed):
    g = torch.Generator(device="cuda").manual_seed(seed)
    mask = torch.rand(1, H, nb, nb, device="cuda", generator=g) < density
    mask |= torch.eye(nb, device="cuda", dtype=torch.bool)  # the diagonal, as the estimator keeps
    return mask.to(torch.uint8).contiguous()


def block_sparse_rows():
    out = []
    H, Hkv, d, block, density = 32, 8, 128, 128, 0.10
    sizes = [8192] if QUICK else [32768] if FEW else [8192, 16384, 32768]
    for N in sizes:
        q = torch.randn(1, H, N, d, device="cuda", dtype=torch.bfloat16)
        k = torch.randn(1, Hkv, N, d, device="cuda", dtype=torch.bfloat16)
        v = torch.randn(1, Hkv, N, d, device="cuda", dtype=torch.bfloat16)
        mask = random_block_mask(H, N // block, density, N)
        kept = mask.float().mean().item()
        o = torch.empty_like(q)
        ours = bench(lambda: heed.block_sparse_attention_forward(q, k, v, mask, block, o))
        ke, ve = k.repeat_interleave(H // Hkv, dim=1), v.repeat_interleave(H // Hkv, dim=1)
        dense = bench(lambda: sdpa_flash(q, ke, ve, False), max_reps=10)
        flops = 4 * H * N * N * d * kept
        # Check against SDPA with the same mask as a boolean element mask (small N only: it is N^2).
        note = f"density {kept:.3f}"
        if N <= 8192:
            el = mask.bool().repeat_interleave(block, 2).repeat_interleave(block, 3)
            ref = torch.nn.functional.scaled_dot_product_attention(q, ke, ve, attn_mask=el)
            note += f", err {rel_err(o, ref):.1e}"
            del el, ref
        out.append(row("block-sparse fwd", f"B1 H{H}/{Hkv} N{N} d{d} blk{block} bf16", ours, flops, "dense SDPA flash",
                       dense, note))
        _SPARSE_CASES.append((N, ours, flops))
        del q, k, v, o, ke, ve, mask
        torch.cuda.empty_cache()
    return out


def flex_rows():
    """FlexAttention over the same block masks (built from the block table: no N^2 mask)."""
    from torch.nn.attention.flex_attention import BlockMask, flex_attention
    flex = torch.compile(flex_attention)
    out = []
    H, Hkv, d, block, density = 32, 8, 128, 128, 0.10
    for N, ours, flops in _SPARSE_CASES:
        q = torch.randn(1, H, N, d, device="cuda", dtype=torch.bfloat16)
        k = torch.randn(1, Hkv, N, d, device="cuda", dtype=torch.bfloat16)
        v = torch.randn(1, Hkv, N, d, device="cuda", dtype=torch.bfloat16)
        mask = random_block_mask(H, N // block, density, N)
        counts = mask.sum(-1, dtype=torch.int32)
        order = torch.argsort(mask.to(torch.int32), dim=-1, descending=True, stable=True).to(torch.int32)
        bm = BlockMask.from_kv_blocks(counts, order, BLOCK_SIZE=block)
        o = torch.empty_like(q)
        heed.block_sparse_attention_forward(q, k, v, mask, block, o)
        fl = bench(lambda: flex(q, k, v, block_mask=bm, enable_gqa=True), max_reps=20)
        err = rel_err(flex(q, k, v, block_mask=bm, enable_gqa=True), o)
        out.append(row("block-sparse fwd", f"B1 H{H}/{Hkv} N{N} d{d} blk{block} bf16", ours, flops, "FlexAttention", fl,
                       f"same mask, ours vs flex err {err:.1e}"))
        del q, k, v, o, mask
        torch.cuda.empty_cache()
    return out


def eager_aggregate(q, k, qpos, kpos, H, Hkv):
    qh = q.transpose(0, 1)                                    # [H, n_q, d]
    kh = k.transpose(0, 1).repeat_interleave(H // Hkv, dim=0)  # [H, n_k, d]
    s = (qh @ kh.transpose(1, 2)).float() / math.sqrt(q.shape[-1])
    s.masked_fill_(kpos[None, None, :] > qpos[None, :, None], float("-inf"))
    p = torch.softmax(s, dim=-1).nan_to_num_(0.0)
    return p.sum(dim=(0, 1))


def aggregate_rows():
    out = []
    H, Hkv, d = 32, 8, 128
    shapes = [(64, 16384), (64, 65536), (64, 262144), (2048, 2048), (4096, 4096), (8192, 8192), (16384, 16384)]
    if QUICK:
        shapes = shapes[:1]
    for n_q, n_k in shapes:
        q = torch.randn(n_q, H, d, device="cuda", dtype=torch.bfloat16)
        k = torch.randn(n_k, Hkv, d, device="cuda", dtype=torch.bfloat16)
        kpos = torch.arange(n_k, device="cuda", dtype=torch.int32)
        qpos = torch.arange(n_k - n_q, n_k, device="cuda", dtype=torch.int32)
        res = torch.empty(n_k, device="cuda", dtype=torch.float32)
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.max_memory_allocated()
        reps = 3 if n_q * n_k > 2**26 else 20
        ours = bench(lambda: heed.attention_aggregate(q, qpos, k, kpos, res, causal=True), min_reps=2, max_reps=reps,
                     budget_ms=1500)
        ours_mem = torch.cuda.max_memory_allocated() - base
        splits_bound = 8 * 64 * H * n_q  # libheed's own row-statistics buffer (cudaMallocAsync, not seen by torch)
        flops = 2 * (2 * n_q * n_k * H * d) * (0.5 if n_q == n_k else 1.0)
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.max_memory_allocated()
        try:
            peer = bench(lambda: eager_aggregate(q, k, qpos, kpos, H, Hkv), min_reps=2, max_reps=reps, budget_ms=1500)
            peer_mem = torch.cuda.max_memory_allocated() - base
            err = rel_err(res, eager_aggregate(q, k, qpos, kpos, H, Hkv))
            note = f"mem ours {ours_mem / 2**20:.0f}+<={splits_bound / 2**20:.0f} MiB, eager {peer_mem / 2**20:.0f} MiB, err {err:.1e}"
        except torch.OutOfMemoryError:
            peer = None
            note = f"eager OOM; ours {ours_mem / 2**20:.0f}+<={splits_bound / 2**20:.0f} MiB"
        out.append(row("aggregate", f"n_q{n_q} n_k{n_k} H{H}/{Hkv} d{d} bf16 causal", ours, flops, "eager softmax",
                       peer, note))
        del q, k, res
        torch.cuda.empty_cache()
    return out


def part_b_rows():
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bench_linear_kv.py")
    if not os.path.exists(path):
        return []
    spec = importlib.util.spec_from_file_location("bench_linear_kv", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.rows(heed, torch)


def fmt(x, spec):
    return "-" if x is None else format(x, spec)


def main():
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name()}, libheed {heed.lib.heed_version().decode()}")
    rows = []
    parts = {"flash": flash_rows, "sparse": block_sparse_rows, "aggregate": aggregate_rows, "partb": part_b_rows,
             "flex": flex_rows}
    for part in [parts[p] for p in PARTS]:
        try:
            got = part()
            for r in got:
                r["name"] += LABEL
        except Exception as e:  # noqa: BLE001 - one failing part must not hide the others
            got = [row(part.__name__, "-", None, None, "-", None, f"FAILED: {type(e).__name__}: {e}"[:160])]
        for r in got:  # as they come, in case the run is cut short
            print("row:", json.dumps(r, default=str), flush=True)
        rows += got
        torch.cuda.empty_cache()
    head = f"{'kernel':<20} {'shape':<42} {'ours ms':>9} {'TFLOP/s':>8} {'peer':<17} {'peer ms':>9} {'ratio':>6}  note"
    print(head)
    print("-" * len(head))
    for r in rows:
        print(f"{r['name']:<20} {r['shape']:<42} {fmt(r['ours_ms'], '9.3f')} {fmt(r.get('tflops'), '8.1f')} "
              f"{str(r['peer']):<17} {fmt(r['peer_ms'], '9.3f')} {fmt(r['ratio'], '6.2f')}  {r['note']}")
    if os.environ.get("OUT") and not LABEL:
        with open(os.path.join(os.environ["OUT"], "bench.json"), "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
