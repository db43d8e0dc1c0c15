#!/usr/bin/env python3
"""Extra retrieval figures for heed-tiny, computed in PyTorch from the shipped GGUF (weights read back with
gguf-py, so this also checks the GGUF -> PyTorch round trip).

  PYTHONPATH=<llama.cpp>/gguf-py python3 eval_retrieval.py models/heed-tiny.gguf models/tokenizer.json \
      models/.corpus/corpus_heldout.jsonl.xz OUT.json

Tasks (greedy decoding, 20 trials per setting, filler = held-out documentation text):
  kv        "Below is a list of keys and their values." N lines "key: value", then
            "What is the value of KEY?"                                  (trained format)
  facts     N facts "The <attr> of <Name> is <value>." hidden in ~1500 tokens, one question   (trained format)
  passage   K labelled passages, "Which passage contains "<quote>"?"      (trained format)
  free_form needle and question phrased differently from training:
            "Note: Alice's locker code is 4821." ... "Q: What is Alice's locker code? A:"  (not trained)
"""
import json
import lzma
import os
import random
import re
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data as D  # noqa: E402
from model import Config, Llama  # noqa: E402

TRIALS = 20
DEV = "cuda" if torch.cuda.is_available() else "cpu"


def load_gguf(path):
    import gguf
    r = gguf.GGUFReader(path)

    def f(k):
        x = r.fields[k]
        return x.parts[x.data[0]][0]
    cfg = Config(vocab_size=int(f("llama.vocab_size")), d_model=int(f("llama.embedding_length")),
                 n_layer=int(f("llama.block_count")), n_head=int(f("llama.attention.head_count")),
                 n_kv_head=int(f("llama.attention.head_count_kv")), ffn_dim=int(f("llama.feed_forward_length")),
                 ctx=int(f("llama.context_length")), rope_base=float(f("llama.rope.freq_base")),
                 norm_eps=float(f("llama.attention.layer_norm_rms_epsilon")),
                 head_dim=int(f("llama.rope.dimension_count")))
    T = {t.name: torch.from_numpy(np.array(t.data, dtype=np.float32)) for t in r.tensors}
    cfg.tie_embeddings = "output.weight" not in T
    sd = {"tok_emb.weight": T["token_embd.weight"], "norm.weight": T["output_norm.weight"],
          "lm_head.weight": T.get("output.weight", T["token_embd.weight"])}
    names = {"attn_norm": "attn_norm", "attn_q": "attn.wq", "attn_k": "attn.wk", "attn_v": "attn.wv",
             "attn_output": "attn.wo", "ffn_norm": "ffn_norm", "ffn_gate": "mlp.w_gate", "ffn_up": "mlp.w_up",
             "ffn_down": "mlp.w_down"}
    for i in range(cfg.n_layer):
        for g, p in names.items():
            sd[f"blocks.{i}.{p}.weight"] = T[f"blk.{i}.{g}.weight"]
    m = Llama(cfg)
    m.load_state_dict(sd)
    return m.to(DEV).eval(), cfg


def main():
    from tokenizers import Tokenizer
    gg, tokp, heldp, outp = sys.argv[1:5]
    model, cfg = load_gguf(gg)
    tok = Tokenizer.from_file(tokp)
    text = "\n\n".join(json.loads(l)["text"] for l in lzma.open(heldp, "rt", encoding="utf-8"))
    r = random.Random(11)

    def filler(ntok):
        o = r.randrange(0, len(text) - 40000)
        ids = tok.encode(text[o:o + 30000]).ids[:ntok]
        return tok.decode(ids)

    @torch.no_grad()
    def gen(prompt, n=8):
        ids = [0] + tok.encode(prompt).ids
        assert len(ids) + n <= cfg.ctx, len(ids)
        out = []
        with torch.autocast(DEV, dtype=torch.bfloat16, enabled=DEV == "cuda"):
            for _ in range(n):
                nxt = int(model(torch.tensor([ids], device=DEV))[0, -1].argmax())
                if nxt in (0, 1):
                    break
                out.append(nxt)
                ids.append(nxt)
        return tok.decode(out), len(ids) - len(out)

    def first_word(s):
        m = re.match(r"\s*([A-Za-z0-9'-]+)", s)
        return m.group(1) if m else ""

    R, ex = {}, {}
    # kv recall
    for n in (10, 50, 100):
        ok, lens = 0, []
        for _ in range(TRIALS):
            pairs = [("%04x-%04x" % (r.randrange(65536), r.randrange(65536)), str(r.randrange(10000, 1000000)))
                     for _ in range(n)]
            k, v = r.choice(pairs)
            p = "Below is a list of keys and their values." + "".join(f"\n{a}: {b}" for a, b in pairs) + \
                f"\n\nWhat is the value of {k}?"
            g, L = gen(p)
            lens.append(L)
            ok += first_word(g) == v
        R[f"kv_{n}_pairs"] = {"acc": ok / TRIALS, "mean_prompt_tokens": float(np.mean(lens))}
        ex[f"kv_{n}"] = g
    # facts in natural text
    for n in (1, 3, 5):
        ok, lens = 0, []
        for _ in range(TRIALS):
            names = r.sample(D.FIRST, n)
            attr = r.choice(["secret number", "code word", "home town", "favourite colour"])
            vals = [r.choice({"secret number": [str(r.randrange(1000, 100000))], "code word": D.WORDS,
                              "home town": D.TOWNS, "favourite colour": D.COLOURS}[attr]) for _ in names]
            chunks = [filler(1400 // (n + 1)) for _ in range(n + 1)]
            p = chunks[0]
            for i in range(n):
                p += f"\nThe {attr} of {names[i]} is {vals[i]}.\n" + chunks[i + 1]
            j = r.randrange(n)
            p += f"\nQuestion: What is the {attr} of {names[j]}?\nAnswer: The {attr} of {names[j]} is"
            g, L = gen(p)
            lens.append(L)
            ok += first_word(g) == vals[j]
        R[f"facts_{n}"] = {"acc": ok / TRIALS, "mean_prompt_tokens": float(np.mean(lens))}
        ex[f"facts_{n}"] = g
    # passage retrieval
    for k in (4, 8):
        ok, lens = 0, []
        for _ in range(TRIALS):
            ps = [filler(r.randint(60, 150)) for _ in range(k)]
            j = r.randrange(k)
            words = ps[j].split()
            s = r.randrange(0, max(1, len(words) - 10))
            quote = " ".join(words[s:s + 8])
            p = "".join(f"\nPassage {i + 1}:\n{t}" for i, t in enumerate(ps)) + \
                f"\nQuestion: Which passage contains \"{quote}\"?\nAnswer: Passage"
            g, L = gen(p, 4)
            lens.append(L)
            ok += first_word(g) == str(j + 1)
        R[f"passage_{k}"] = {"acc": ok / TRIALS, "mean_prompt_tokens": float(np.mean(lens))}
        ex[f"passage_{k}"] = g
    # free-form (format not seen in training)
    ok, lens = 0, []
    for _ in range(TRIALS):
        nm, code = r.choice(D.FIRST), str(r.randrange(1000, 10000))
        f1, f2 = filler(600), filler(600)
        p = f"{f1}\nNote: {nm}'s locker code is {code}.\n{f2}\nQ: What is {nm}'s locker code?\nA:"
        g, L = gen(p)
        lens.append(L)
        ok += code in g
    R["free_form_locker_code"] = {"acc": ok / TRIALS, "mean_prompt_tokens": float(np.mean(lens))}
    ex["free_form"] = g
    R["examples_last_generation"] = ex
    json.dump(R, open(outp, "w"), indent=1)
    print(json.dumps(R, indent=1))


if __name__ == "__main__":
    main()
