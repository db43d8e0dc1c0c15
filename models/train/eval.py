#!/usr/bin/env python3
"""Heed-tiny evaluation.

  eval.py pytorch CKPT TOKENIZER ARR_DIR DATA_DIR WORK     PyTorch figures + inputs for the llama.cpp checks
  eval.py llama   WORK                                     compare llama.cpp outputs (written by
                                                           device script) with the PyTorch side

WORK receives: eval_pytorch.json, ppl.txt (held-out text for llama-perplexity), logits_ids.txt +
logits_pt.npy (PyTorch fp32 logits for the fixture prefix), passkey_prompts.txt (\x1e-separated) +
passkey_meta.json, heldout.tokens.json (fixture ids from the training tokenizer).
"""
import json
import lzma
import math
import os
import random
import re
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

LENGTHS = tuple(int(x) for x in os.environ.get("HEED_LENGTHS", "512,1024,1536,2000").split(","))
DEV = os.environ.get("HEED_DEVICE", "cuda")
DEPTHS = (0.1, 0.25, 0.5, 0.75, 0.9)
TRIALS = int(os.environ.get("HEED_TRIALS", 5))
PPL_CHUNKS = int(os.environ.get("HEED_PPL_CHUNKS", 40))
CLASSIC = " The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again."
INTRO = ("There is an important info hidden inside a lot of irrelevant text. Find it and memorize it. "
         "I will quiz you about the important information there.")
FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "heldout.txt")


def passkey_prompts(tok, natural_text):
    r = random.Random(7)
    out = []
    for kind in ("classic", "natural"):
        for L in LENGTHS:
            for d in DEPTHS:
                for t in range(TRIALS):
                    k = str(r.randrange(10000, 100000))
                    needle = f" The pass key is {k}. Remember it. {k} is the pass key."
                    q = " What is the pass key? The pass key is"
                    if kind == "classic":
                        unit = CLASSIC
                        base = len(tok.encode(INTRO + needle + q).ids) + 1
                        per = len(tok.encode(CLASSIC * 10).ids) / 10
                        n = max(1, int((L - base) / per))
                        pre, post = unit * int(round(n * d)), unit * (n - int(round(n * d)))
                        p = INTRO + pre + needle + post + q
                    else:
                        o = r.randrange(0, len(natural_text) - 20000)
                        filler = natural_text[o:o + 12000]
                        ids = tok.encode(filler).ids
                        base = len(tok.encode(INTRO + needle + "\n" + q).ids) + 2
                        ids = ids[:max(0, L - base)]
                        cut = int(round(len(ids) * d))
                        pre, post = tok.decode(ids[:cut]), tok.decode(ids[cut:])
                        p = INTRO + "\n" + pre + "\n" + needle.strip() + "\n" + post + "\n" + q.strip()
                    out.append({"kind": kind, "len": L, "depth": d, "key": k, "prompt": p})
    return out


def score_generation(gen, key):
    m = re.match(r"\s*(\d+)", gen)
    return bool(m) and m.group(1) == key


def table(meta, gens):
    res = {}
    for m, g in zip(meta, gens):
        res.setdefault(m["kind"], {}).setdefault(m["len"], {}).setdefault(m["depth"], []).append(
            score_generation(g, m["key"]))
    out = {}
    for kind, byl in res.items():
        out[kind] = {str(L): {str(d): sum(v) / len(v) for d, v in byd.items()} for L, byd in byl.items()}
        allv = [x for byd in byl.values() for v in byd.values() for x in v]
        out[kind]["overall"] = sum(allv) / len(allv)
    return out


def pytorch(ckpt, tok_path, arr_dir, data_dir, work):
    import torch
    import torch.nn.functional as F
    from tokenizers import Tokenizer
    from model import Config, Llama
    os.makedirs(work, exist_ok=True)
    tok = Tokenizer.from_file(tok_path)
    ck = torch.load(ckpt, map_location=DEV, weights_only=False)
    cfg = Config(**ck["config"])
    model = Llama(cfg).to(DEV)
    model.load_state_dict({k.replace("_orig_mod.", ""): v for k, v in ck["model"].items()})
    model.eval()
    R = {"params": model.n_params(), "train_tokens": ck.get("tokens"), "train_steps": ck.get("step")}

    # fixture ids (training tokenizer, add_bos=false, no special-token parsing: the tokenizer has no
    # post-processor and the fixture contains no special-token text)
    fx = open(FIXTURE, encoding="utf-8").read()
    fids = tok.encode(fx, add_special_tokens=False).ids
    assert tok.decode(fids) == fx, "fixture does not round-trip"
    json.dump(fids, open(os.path.join(work, "heldout.tokens.json"), "w"))
    R["fixture_tokens"] = len(fids)

    # logits for llama.cpp comparison: BOS + first 511 fixture tokens, fp32 model
    ids = [0] + fids[:min(511, cfg.ctx - 1)]
    open(os.path.join(work, "logits_ids.txt"), "w").write(" ".join(map(str, ids)))
    with torch.no_grad():
        lg = model.float()(torch.tensor([ids], device=DEV))[0].float().cpu().numpy()
    np.save(os.path.join(work, "logits_pt.npy"), lg)

    # held-out perplexity, non-overlapping 2048 windows over all held-out docs / code
    def nll_windows(arr):
        T = cfg.ctx
        n = (len(arr) - 1) // T
        tot, cnt = 0.0, 0
        with torch.no_grad(), torch.autocast(DEV, dtype=torch.bfloat16, enabled=DEV == "cuda"):
            for i in range(0, n, 16):
                xs = np.stack([arr[j * T:j * T + T + 1] for j in range(i, min(n, i + 16))]).astype(np.int64)
                x = torch.from_numpy(xs).to(DEV)
                l = F.cross_entropy(model(x[:, :-1]).float().reshape(-1, cfg.vocab_size), x[:, 1:].reshape(-1),
                                    reduction="sum")
                tot += l.item()
                cnt += x[:, 1:].numel()
        return tot, cnt
    for g in ("heldout_docs", "heldout_code"):
        arr = np.load(os.path.join(arr_dir, g + ".npy"))
        tot, cnt = nll_windows(arr)
        R[f"ppl_{g}"] = math.exp(tot / cnt)
        R[f"tokens_{g}"] = cnt

    # llama-perplexity-compatible: text file, BOS + tokens, chunks of 2048 with BOS on the first
    # position, score the second half of each chunk
    docs = [json.loads(l)["text"] for l in lzma.open(os.path.join(data_dir, "corpus_heldout.jsonl.xz"), "rt",
                                                     encoding="utf-8")]
    text = "\n\n".join(docs)
    toks = tok.encode(text).ids
    need = PPL_CHUNKS * cfg.ctx + 10
    # cut the text so that it tokenizes to just over `need` tokens
    cut = len(tok.decode(toks[:need]))
    ptxt = text[:cut]
    open(os.path.join(work, "ppl.txt"), "w", encoding="utf-8").write(ptxt)
    tk = [0] + tok.encode(ptxt).ids
    n_ctx, first = cfg.ctx, cfg.ctx // 2
    nll, cnt = 0.0, 0
    with torch.no_grad():
        m32 = model.float()
        for c in range(min(PPL_CHUNKS, len(tk) // n_ctx)):
            ch = tk[c * n_ctx:(c + 1) * n_ctx]
            ch = [0] + ch[1:]
            x = torch.tensor([ch], device=DEV)
            lp = F.log_softmax(m32(x)[0].float(), -1)
            tgt = torch.tensor(ch[first + 1:], device=DEV)
            nll -= lp[first:n_ctx - 1].gather(1, tgt[:, None]).sum().item()
            cnt += len(ch) - first - 1
    R["ppl_llamacpp_style_pytorch"] = math.exp(nll / cnt)
    R["ppl_llamacpp_style_chunks"] = min(PPL_CHUNKS, len(tk) // n_ctx)

    # passkey, greedy, 8 new tokens, no KV cache (full forward each step)
    P = passkey_prompts(tok, text)
    gens = []
    with torch.no_grad(), torch.autocast(DEV, dtype=torch.bfloat16, enabled=DEV == "cuda"):
        for p in P:
            ids = [0] + tok.encode(p["prompt"]).ids
            p["n_tokens"] = len(ids)
            out = []
            for _ in range(8):
                nxt = int(model(torch.tensor([ids], device=DEV))[0, -1].argmax())
                if nxt == 1:
                    break
                out.append(nxt)
                ids.append(nxt)
            gens.append(tok.decode(out))
    R["passkey_pytorch"] = table(P, gens)
    R["passkey_examples"] = [{"len": p["len"], "depth": p["depth"], "key": p["key"], "gen": g}
                             for p, g in list(zip(P, gens))[::17]]
    json.dump([{k: v for k, v in p.items() if k != "prompt"} for p in P],
              open(os.path.join(work, "passkey_meta.json"), "w"))
    json.dump(gens, open(os.path.join(work, "passkey_gens_pt.json"), "w"))
    open(os.path.join(work, "passkey_prompts.txt"), "w", encoding="utf-8").write("\x1e".join(p["prompt"] for p in P))
    json.dump(R, open(os.path.join(work, "eval_pytorch.json"), "w"), indent=1)
    print(json.dumps(R, indent=1))


def llama(work):
    R = {}
    pt = np.load(os.path.join(work, "logits_pt.npy"))
    lc = np.fromfile(os.path.join(work, "logits_llama.bin"), dtype=np.float32).reshape(pt.shape)
    d = np.abs(pt - lc)
    R["logits_max_abs_diff"] = float(d.max())
    R["logits_mean_abs_diff"] = float(d.mean())
    R["logits_ref_absmax"] = float(np.abs(pt).max())
    R["logits_argmax_agree"] = float((pt.argmax(1) == lc.argmax(1)).mean())
    a = json.load(open(os.path.join(work, "heldout.tokens.json")))
    b = json.load(open(os.path.join(work, "heldout.llama.tokens.json")))
    R["fixture_match"] = a == b
    R["fixture_tokens"] = [len(a), len(b)]
    if a != b:
        i = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
        R["fixture_first_mismatch"] = [i, a[i:i + 8], b[i:i + 8]]
    p = os.path.join(work, "perplexity.log")
    if os.path.exists(p):
        m = re.findall(r"Final estimate: PPL = ([0-9.]+) \+/- ([0-9.]+)", open(p, errors="replace").read())
        if m:
            R["ppl_llamacpp"] = [float(m[-1][0]), float(m[-1][1])]
    g = os.path.join(work, "passkey_gens_llama.txt")
    if os.path.exists(g):
        meta = json.load(open(os.path.join(work, "passkey_meta.json")))
        gens = open(g, encoding="utf-8", errors="replace").read().split("\n")[:len(meta)]
        R["passkey_llamacpp"] = table(meta[:len(gens)], gens)
        ptg = json.load(open(os.path.join(work, "passkey_gens_pt.json")))
        R["passkey_same_answer_as_pytorch"] = float(np.mean(
            [re.match(r"\s*(\d*)", x).group(1) == re.match(r"\s*(\d*)", y).group(1) for x, y in zip(gens, ptg)]))
    json.dump(R, open(os.path.join(work, "eval_llama.json"), "w"), indent=1)
    print(json.dumps(R, indent=1))


if __name__ == "__main__":
    if sys.argv[1] == "pytorch":
        pytorch(*sys.argv[2:7])
    else:
        llama(sys.argv[2])
