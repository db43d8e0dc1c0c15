#!/usr/bin/env python3
"""CPU check of the heed-small recipe before any GPU time is spent (runs on the development machine, which
has PyTorch but not the `tokenizers` package):

  python3 models/train/cpu_check.py models/tokenizer.json models/.corpus OUT_DIR

1. A pure-Python byte-level BPE reader of tokenizer.json stands in for `tokenizers`; it must give the ids of
   models/fixtures/heldout.tokens.json exactly (so the episodes seen here are the ones the GPU will see).
2. Token arrays from a slice of the corpus; 300 training episodes and 300 held-out-wording episodes: every
   episode decodes, fits its length, and the printed samples are read by eye; generation speed per core.
3. The heed-small configuration: parameter count, GGUF size, one training step at a short context (loss
   falls on a repeated batch), a checkpoint written as train.py writes it (for convert.py).
"""
import json
import lzma
import os
import random
import sys
import time
from functools import lru_cache

import regex
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data as D  # noqa: E402
from model import Config, Llama  # noqa: E402

GPT2_SPLIT = regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")


def byte_to_unicode():
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    table, extra = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


class Encoding:
    def __init__(self, ids):
        self.ids = ids


class PyBpe:
    """The subset of tokenizers.Tokenizer that data.py uses, for a ByteLevel BPE tokenizer.json."""

    def __init__(self, path):
        tj = json.load(open(path, encoding="utf-8"))
        self.vocab = dict(tj["model"]["vocab"])
        for a in tj["added_tokens"]:
            self.vocab[a["content"]] = a["id"]
        self.inv = {i: t for t, i in self.vocab.items()}
        merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in tj["model"]["merges"]]
        self.rank = {m: i for i, m in enumerate(merges)}
        self.b2u = byte_to_unicode()
        self.u2b = {u: b for b, u in self.b2u.items()}
        self.special = {a["id"] for a in tj["added_tokens"]}

    @lru_cache(maxsize=200000)
    def word(self, w):
        parts = [self.b2u[b] for b in w.encode("utf-8")]
        while len(parts) > 1:
            best = min(range(len(parts) - 1), key=lambda i: self.rank.get((parts[i], parts[i + 1]), 1 << 30))
            if (parts[best], parts[best + 1]) not in self.rank:
                break
            parts[best:best + 2] = [parts[best] + parts[best + 1]]
        return tuple(self.vocab[p] for p in parts)

    def encode(self, text, add_special_tokens=False):
        ids = []
        for w in GPT2_SPLIT.findall(text):
            ids += self.word(w)
        return Encoding(ids)

    def encode_batch(self, texts, add_special_tokens=False):
        return [self.encode(t) for t in texts]

    def decode(self, ids):
        s = "".join(self.inv[i] for i in ids if i not in self.special)
        return bytes(self.u2b[c] for c in s).decode("utf-8", errors="replace")

    def get_vocab(self):
        return self.vocab


def main():
    tok_path, corpus, out = sys.argv[1:4]
    os.makedirs(out, exist_ok=True)
    tok = PyBpe(tok_path)
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    fixture = open(os.path.join(root, "fixtures", "heldout.txt"), encoding="utf-8").read()
    want = json.load(open(os.path.join(root, "fixtures", "heldout.tokens.json")))
    got = tok.encode(fixture).ids
    assert got == want, "the Python BPE reader disagrees with the fixture"
    assert tok.decode(got) == fixture
    print(f"1. Python BPE reader: fixture ids identical ({len(got)})")

    texts = {"docs": [], "gcide": [], "heldout_docs": []}
    for split, fn in (("", "corpus_train.jsonl.xz"), ("heldout_", "corpus_heldout.jsonl.xz")):
        for line in lzma.open(os.path.join(corpus, fn), "rt", encoding="utf-8"):
            d = json.loads(line)
            g = split + ("gcide" if d["src"] == "dict-gcide" and not split else "docs")
            if sum(map(len, texts[g])) < 1_500_000:
                texts[g].append(d["text"])
    arrays = {g: D._pack(D._encode_docs(tok, t)) for g, t in texts.items()}
    arrays["code"] = arrays["docs"]
    print("2. arrays:", {g: len(a) for g, a in arrays.items()})
    synonyms = json.load(lzma.open(os.path.join(corpus, "synonyms.json.xz"), "rt", encoding="utf-8"))
    print(f"   synonyms: {len(synonyms['synonyms'])} words ({synonyms['source']})")
    report = {}
    for side, heldout in (("train", False), ("heldout", True)):
        syn = D.Synth(tok, arrays, random.Random(5), D.Wording(heldout), synonyms=synonyms)
        kinds = [k for k, _ in syn.MIX]
        samples, lengths, t0 = [], [], time.time()
        for i in range(300):
            kind = kinds[i % len(kinds)]
            L = syn.r.randint(200, 2046)
            ids, mask = getattr(syn, kind)(L)
            assert len(ids) == len(mask) and all(0 <= x < len(tok.vocab) for x in ids)
            lengths.append((kind, len(ids), L))
            if i < 2 * len(kinds):
                text = "".join(("[[" + tok.decode([x]) + "]]") if m == 0 else tok.decode([x]) for x, m in zip(ids, mask))
                samples.append(f"===== {side} {kind} L={L} n={len(ids)}\n{text[-1500:]}\n")
        over = [x for x in lengths if x[1] > x[2]]
        print(f"   {side}: {len(over)} of 300 episodes longer than asked (cut by Synth.row):", over[:5])
        rows = 0
        t1 = time.time()
        while time.time() - t1 < 10:
            syn.row(2049)
            rows += 1
        report[side] = {"episodes_s": round(300 / (t1 - t0), 1), "rows_2049_per_s_one_core": round(rows / (time.time() - t1), 2)}
        open(os.path.join(out, f"episodes_{side}.txt"), "w", encoding="utf-8").write("\n".join(samples))
    print("   episode speed:", report)

    cfg = Config()
    torch.manual_seed(0)
    model = Llama(cfg)
    n = model.n_params()
    print(f"3. heed-small config {cfg.to_dict()}: {n} parameters, F16 GGUF about {n * 2 / 1e6:.1f} MB")
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    syn = D.Synth(tok, arrays, random.Random(9))
    ids, mask = syn.row(257)
    x = torch.tensor([ids[:-1]])
    y = torch.tensor([[t if m else -100 for t, m in zip(ids[1:], mask[1:])]])
    losses = []
    for _ in range(4):
        loss = torch.nn.functional.cross_entropy(model(x).reshape(-1, cfg.vocab_size), y.reshape(-1), ignore_index=-100)
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(round(loss.item(), 3))
    print("   loss on one repeated row:", losses)
    assert losses[-1] < losses[0]

    # Block attention: a block row's passages must not see each other. Independent check: the output at a
    # passage's tokens equals a causal forward of segment-0 tokens before it plus the passage alone.
    syn = D.Synth(tok, arrays, random.Random(11), synonyms=synonyms)
    ids, mask, seg = syn.block_row(513)
    text = "".join(f"<{g}>" + tok.decode([t]) if g and (i == 0 or seg[i - 1] != g) else tok.decode([t])
                   for i, (t, g) in enumerate(zip(ids, seg)))
    open(os.path.join(out, "block_row.txt"), "w", encoding="utf-8").write(text)
    n = 256
    m = D.block_mask(torch.tensor([seg[:n]]))[0, 0]
    ref = torch.tensor([[j <= i and (seg[i] == seg[j] or seg[j] == 0 or seg[i] == 0) for j in range(n)]
                        for i in range(n)])
    assert torch.equal(m, ref), "block_mask disagrees with its definition"
    first = next(g for g in seg if g)
    second = next(g for g in seg if g > first)
    assert second < n and not m[seg.index(second), seg.index(first)], "a passage sees another"
    model.eval()
    with torch.no_grad():
        full = model(torch.tensor([ids[:n]]), D.block_mask(torch.tensor([seg[:n]])))[0]
        cut = seg.index(second)                        # everything before the second passage, causally
        alone = model(torch.tensor([ids[:cut]]))[0]
        later = [i for i in range(cut, n) if seg[i] == second]
        causal = model(torch.tensor([ids[:n]]))[0]
    d_first = (full[:cut] - alone).abs().max().item()
    d_second = (full[later] - causal[later]).abs().max().item()
    print(f"   block row: {len(set(seg)) - 1} passages in 513 tokens; mask = its definition over {n} tokens; "
          f"up to passage {second}: masked vs causal alone max |diff| {d_first:.3g}; at passage {second}: "
          f"masked vs causal {d_second:.3g}")
    assert d_first < 1e-4 and d_second > 1e-3
    model.train()
    xb, gb = torch.tensor([ids[:-1]]), torch.tensor([seg[:-1]])
    yb = torch.tensor([[t if m else -100 for t, m in zip(ids[1:], mask[1:])]])
    lb = torch.nn.functional.cross_entropy(model(xb, D.block_mask(gb)).reshape(-1, cfg.vocab_size), yb.reshape(-1),
                                           ignore_index=-100)
    lb.backward()
    print(f"   one block-attention step: loss {lb.item():.3f}")

    torch.save({"model": model.state_dict(), "config": cfg.to_dict(), "step": 4, "tokens": 4 * 256},
               os.path.join(out, "final.pt"))
    print("   wrote", os.path.join(out, "final.pt"))


if __name__ == "__main__":
    main()
