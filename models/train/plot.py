#!/usr/bin/env python3
"""Draw models/train/loss.png from the training metrics (JSON lines written by train.py).
Usage: python3 plot.py METRICS.jsonl OUT.png"""
import json
import sys

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
tok = [r["tokens"] / 1e6 for r in rows]
fig, ax = plt.subplots(1, 2, figsize=(12, 4.5))
ax[0].plot(tok, [r["loss"] for r in rows], label="train loss (all rows, unmasked tokens)", lw=1)
ax[0].plot(tok, [r["loss_natural_rows"] for r in rows], label="natural-text rows", lw=1, alpha=.7)
ax[0].plot(tok, [r["loss_synthetic_rows"] for r in rows], label="synthetic retrieval rows", lw=1, alpha=.7)
for k, lab in (("val_heldout_docs", "held-out docs"), ("val_heldout_code", "held-out Python code")):
    pts = [(r["tokens"] / 1e6, r[k]) for r in rows if k in r]
    if pts:
        ax[0].plot(*zip(*pts), "o-", ms=3, label=lab)
ax[0].set_xlabel("training tokens (M)")
ax[0].set_ylabel("cross-entropy (nats/token)")
ax[0].set_ylim(0, 8)
ax[0].grid(alpha=.3)
ax[0].legend()
ax[1].plot(tok, [r["lr"] for r in rows])
ax[1].set_xlabel("training tokens (M)")
ax[1].set_ylabel("learning rate")
ax[1].grid(alpha=.3)
fig.suptitle("heed-tiny training (H100, bf16)")
fig.tight_layout()
fig.savefig(sys.argv[2], dpi=110)
print("wrote", sys.argv[2])
