#!/usr/bin/env python3
"""Train heed-small (PyTorch, bf16 autocast, AdamW, cosine LR over a wall-clock budget, resumable).

  python3 train.py --tok models/tokenizer.json --data models/.data --arr /tmp/heed_arr --out /tmp/ckpt \
      --time-budget 480 [--compile] [--resume /tmp/ckpt/ckpt.pt]

The LR schedule is a function of the fraction of the training-time budget spent (warmup 3%, cosine to 10%),
so a resumed run continues the same schedule; checkpoints (model, optimizer, step, tokens, elapsed time)
are written every --ckpt-every seconds and at the end. Metrics go to --metrics (JSON lines) and a
human-readable log to --log.
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data as D  # noqa: E402
from model import Config, Llama  # noqa: E402


def lr_at(frac, peak, warm=0.03, floor=0.1):
    if frac < warm:
        return peak * frac / warm
    f = min(1.0, (frac - warm) / (1 - warm))
    return peak * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * f)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tok", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--arr", default="/tmp/heed_arr")
    ap.add_argument("--out", required=True)
    ap.add_argument("--time-budget", type=float, default=480)
    ap.add_argument("--batch", type=int, default=48)
    ap.add_argument("--lr", type=float, default=1.5e-3)
    ap.add_argument("--wd", type=float, default=0.1)
    ap.add_argument("--p-synth", type=float, default=0.67)
    ap.add_argument("--p-block", type=float, default=0.1, help="share of batches trained with block attention")
    ap.add_argument("--stop-after", type=float, default=0,
                    help="leave after this many seconds of training in this call (checkpoint kept, no final.pt): "
                         "a budget longer than one call is spent over several, each with --resume")
    ap.add_argument("--workers", type=int, default=13)
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--resume", default="")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--ckpt-every", type=float, default=120)
    ap.add_argument("--log", default="")
    ap.add_argument("--metrics", default="")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--small", action="store_true", help="tiny config for CPU tests of the code path")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    logf = open(a.log or os.path.join(a.out, "train.log"), "a")
    metf = open(a.metrics or os.path.join(a.out, "metrics.jsonl"), "a")

    def log(s):
        print(s, flush=True)
        logf.write(s + "\n")
        logf.flush()

    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    dev = a.device
    t_setup = time.time()
    if not os.path.exists(os.path.join(a.arr, "stats.json")):
        from tokenizers import Tokenizer
        stats = D.build_arrays(Tokenizer.from_file(a.tok), a.data, a.arr)
    else:
        stats = json.load(open(os.path.join(a.arr, "stats.json")))
    log("data: " + json.dumps(stats))
    log(f"data ready in {time.time() - t_setup:.1f}s")

    cfg = Config(vocab_size=259, d_model=64, n_layer=2, n_head=2, n_kv_head=1, head_dim=32, ffn_dim=128, ctx=1024) \
        if a.small else Config()
    torch.manual_seed(a.seed)
    model = Llama(cfg).to(dev)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and "tok_emb" not in n]
    nodecay = [p for n, p in model.named_parameters() if p.dim() < 2 or "tok_emb" in n]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": a.wd}, {"params": nodecay, "weight_decay": 0.0}],
                            lr=a.lr, betas=(0.9, 0.95), eps=1e-8,
                            **({"fused": True} if dev == "cuda" else {}))
    step, tokens, elapsed = 0, 0, 0.0
    if a.resume and os.path.exists(a.resume):
        ck = torch.load(a.resume, map_location=dev, weights_only=False)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        step, tokens, elapsed = ck["step"], ck["tokens"], ck["elapsed"]
        log(f"resumed from {a.resume}: step {step}, tokens {tokens}, elapsed {elapsed:.1f}s")
    log(f"config {json.dumps(cfg.to_dict())} params {model.n_params()} "
        f"(non-embedding {model.n_params() - (1 if cfg.tie_embeddings else 2) * cfg.vocab_size * cfg.d_model})")
    fwd = torch.compile(model) if a.compile else model
    fwd_masked = fwd

    # fixed held-out windows for periodic validation
    val = {}
    for g, n in (("heldout_docs", 8), ("heldout_code", 4)):
        arr = np.load(os.path.join(a.arr, g + ".npy"))
        idx = np.linspace(0, len(arr) - cfg.ctx - 2, n).astype(np.int64)
        val[g] = torch.from_numpy(np.stack([arr[i:i + cfg.ctx + 1] for i in idx]).astype(np.int64)).to(dev)

    def validate():
        model.eval()
        out = {}
        with torch.no_grad(), torch.autocast(dev, dtype=torch.bfloat16, enabled=dev == "cuda"):
            for g, v in val.items():
                lg = model(v[:, :-1])
                out[g] = F.cross_entropy(lg.float().reshape(-1, cfg.vocab_size), v[:, 1:].reshape(-1)).item()
        model.train()
        return out

    def save_checkpoint():
        """What --resume reads: weights, optimizer state and how far the run got."""
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step, "tokens": tokens,
                    "elapsed": elapsed, "config": cfg.to_dict(), "args": vars(a)}, os.path.join(a.out, "ckpt.pt"))

    ds = D.Stream(a.tok, a.arr, a.batch, cfg.ctx, a.p_synth, a.seed + step, p_block=a.p_block)
    dl = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=a.workers, pin_memory=dev == "cuda",
                                     prefetch_factor=4, persistent_workers=True)
    it = iter(dl)
    model.train()
    t_last_ck = time.time()
    t_prev = None
    acc = {"loss": 0.0, "nat": 0.0, "syn": 0.0, "n_nat": 0, "n_syn": 0, "k": 0}
    t_log = time.time()
    tok_log = 0
    log(f"training: batch {a.batch}x{cfg.ctx}, lr {a.lr}, p_synth {a.p_synth}, budget {a.time_budget}s, "
        f"compile {a.compile}")
    elapsed_at_start = elapsed
    stopped = False
    while elapsed < a.time_budget:
        if a.stop_after and elapsed - elapsed_at_start >= a.stop_after:
            stopped = True
            break
        x, y, s, seg = next(it)
        x, y, s = x.to(dev, non_blocking=True), y.to(dev, non_blocking=True), s.to(dev, non_blocking=True)
        mask = D.block_mask(seg.to(dev, non_blocking=True)) if seg.numel() else None
        lr = lr_at(elapsed / a.time_budget, a.lr)
        for g in opt.param_groups:
            g["lr"] = lr
        with torch.autocast(dev, dtype=torch.bfloat16, enabled=dev == "cuda"):
            f = fwd if mask is None else fwd_masked
            try:
                logits = f(x, mask)
            except Exception as e:          # torch.compile failure: fall back to eager for this kind of batch
                if f is model:
                    raise
                log(f"torch.compile failed ({type(e).__name__}: {str(e)[:200]}); using eager "
                    f"for {'block-attention' if mask is not None else 'causal'} batches")
                if mask is None:
                    fwd = model
                else:
                    fwd_masked = model
                logits = model(x, mask)
        lt = F.cross_entropy(logits.float().reshape(-1, cfg.vocab_size), y.reshape(-1), ignore_index=-100,
                             reduction="none").view(y.shape)
        valid = (y != -100).float()
        loss = lt.sum() / valid.sum()
        loss.backward()
        gn = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        step += 1
        tokens += x.numel()
        tok_log += x.numel()
        with torch.no_grad():
            row = lt.sum(1) / valid.sum(1).clamp(min=1)
            acc["loss"] += loss.detach()
            acc["nat"] += (row * (~s)).sum()
            acc["syn"] += (row * s).sum()
            acc["n_nat"] += (~s).sum()
            acc["n_syn"] += s.sum()
            acc["k"] += 1
        now = time.time()
        if t_prev is None:          # first step (includes compile): not counted against the budget
            if dev == "cuda":
                torch.cuda.synchronize()
            log(f"first step took {time.time() - t_setup:.1f}s since setup start")
            t_prev = time.time()
            acc = {k: 0 for k in acc}
            t_log, tok_log = time.time(), 0
            continue
        elapsed += now - t_prev
        t_prev = now
        if step % 25 == 0 or elapsed >= a.time_budget:
            k = acc["k"]
            m = {"step": step, "tokens": tokens, "elapsed": round(elapsed, 2), "lr": lr,
                 "loss": (acc["loss"] / k).item(), "gnorm": gn.item(),
                 "tok_s": tok_log / (time.time() - t_log)}
            m["loss_natural_rows"] = float(acc["nat"] / max(1, int(acc["n_nat"])))
            m["loss_synthetic_rows"] = float(acc["syn"] / max(1, int(acc["n_syn"])))
            if step % 100 == 0 or elapsed >= a.time_budget:
                m.update({"val_" + g: v for g, v in validate().items()})
            metf.write(json.dumps(m) + "\n")
            metf.flush()
            log(" ".join(f"{kk} {vv:.4g}" if isinstance(vv, float) else f"{kk} {vv}" for kk, vv in m.items()))
            acc = {kk: 0 for kk in acc}
            t_log, tok_log = time.time(), 0
        if time.time() - t_last_ck > a.ckpt_every or elapsed >= a.time_budget:
            save_checkpoint()
            t_last_ck = time.time()
    if stopped:
        save_checkpoint()
        log(f"stopped after {elapsed - elapsed_at_start:.1f}s of this call: step {step}, tokens {tokens}, "
            f"{elapsed:.1f}s of the {a.time_budget:.0f}s budget; resume with --resume {a.out}/ckpt.pt")
        os._exit(3)
    log(f"done: step {step}, tokens {tokens}, train time {elapsed:.1f}s, "
        f"wall since setup {time.time() - t_setup:.1f}s")
    torch.save({"model": model.state_dict(), "config": cfg.to_dict(), "step": step, "tokens": tokens},
               os.path.join(a.out, "final.pt"))
    os._exit(0)   # skip DataLoader worker teardown


if __name__ == "__main__":
    main()
