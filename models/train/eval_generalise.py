#!/usr/bin/env python3
"""Does retrieval carry over to wording no training episode used? Every model named on the command line
gets the same prompts, in one run, so the figures compare directly (heed-small against heed-tiny).

  PYTHONPATH=<llama.cpp>/gguf-py python3 eval_generalise.py models/tokenizer.json \
      models/.corpus/corpus_heldout.jsonl.xz OUT.json heed-small=models/heed-small.gguf heed-tiny=models/heed-tiny.gguf

Prose: documents held out of training (corpus_heldout). Wording: the HELDOUT_* lists of templates.py
(facts, attributes, questions, question wrappers, cloze questions, passage-ranking format), none of which any
training episode used. Weights are read back from the GGUF files (gguf-py), greedy decoding.

  needle_new_wording     one fact in held-out prose (about 1,000 and 1,900 tokens), asked in held-out words
  needles_distractors    4 facts with one held-out attribute about 4 entities + 2 distractor mentions; ask one
  free_form_locker       heed-tiny's free-form row, unchanged ("Note: X's locker code is N." / "Q: ... A:")
  cloze                  a held-out-wording fill-the-blank question about a sentence of the prose
  ranking_generation     6 labelled held-out passages in a held-out format; one holds the fact, two hold the
                         same attribute for other entities; the model names the passage
  ranking_attention      the same passages in Heed's ICR prompt; a passage's score is the attention mass the
                         query's tokens give it minus the mass a "N/A" query gives it (per layer, and summed
                         over layers); top-1 accuracy. Peer: BM25 on the same passages and query.
"""
import json
import lzma
import math
import os
import random
import re
import sys
from collections import Counter

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data as D  # noqa: E402
import templates as TPL  # noqa: E402
from eval_retrieval import DEV, load_gguf  # noqa: E402
from model import apply_rope  # noqa: E402

TRIALS = int(os.environ.get("HEED_GEN_TRIALS", 40))
ICR_HEAD = "Here are some paragraphs:"
ICR_QUERY = "\n\nPlease find information that is relevant to the following query in the paragraphs above.\n\nQuery:"


class Prompts:
    """Builds every prompt once (seeded) so that each model answers exactly the same ones."""

    def __init__(self, tok, text):
        self.tok, self.text, self.r = tok, text, random.Random(2026)
        self.w = D.Wording(heldout=True)

    def prose(self, ntok):
        """About ntok tokens of held-out prose, cut at a sentence end."""
        o = self.r.randrange(0, len(self.text) - 12 * ntok - 100)
        ids = self.tok.encode(self.text[o:o + 8 * ntok]).ids[:ntok]
        s = self.tok.decode(ids)
        return s[:s.rfind(".") + 1] if "." in s[len(s) // 2:] else s

    def fact(self, attr=None):
        names, kind = attr or self.r.choice(self.w.attributes)
        return {"E": D.entity(self.r), "names": names, "kind": kind, "V": D.value(self.r, kind)}

    def say(self, f):
        t = self.r.choice(self.w.facts).replace("{E}", f["E"]).replace("{A}", self.r.choice(f["names"]))
        return D.sentence_case(t).replace("{V}", f["V"])

    def ask(self, f):
        q = self.r.choice(self.w.questions).replace("{E}", f["E"]).replace("{A}", self.r.choice(f["names"]))
        wrap, gap = self.r.choice(self.w.wrappers)
        return wrap.replace("{Q}", D.sentence_case(q)), D.sentence_case(q)

    def embed(self, sentences, ntok):
        """Held-out prose with the sentences put in at random sentence ends."""
        chunks = [self.prose(ntok // (len(sentences) + 1)) for _ in range(len(sentences) + 1)]
        out = chunks[0]
        for s, c in zip(sentences, chunks[1:]):
            out += "\n" + s + "\n" + c
        return out

    def needle(self, ntok):
        f = self.fact()
        return {"prompt": self.embed([self.say(f)], ntok) + self.ask(f)[0], "answer": f["V"]}

    def needles_distractors(self):
        attr = self.r.choice(self.w.attributes)
        fs = [self.fact(attr) for _ in range(4)]
        sents = [self.say(f) for f in fs]
        for f in self.r.sample(fs, 2):
            t = self.r.choice(TPL.TRAIN_MENTIONS).replace("{E}", f["E"]).replace("{A}", self.r.choice(f["names"]))
            sents.append(D.sentence_case(t))
        self.r.shuffle(sents)
        f = self.r.choice(fs)
        return {"prompt": self.embed(sents, 1700) + self.ask(f)[0], "answer": f["V"]}

    def locker(self):
        nm, code = self.r.choice(D.FIRST), str(self.r.randrange(1000, 10000))
        return {"prompt": f"{self.prose(600)}\nNote: {nm}'s locker code is {code}.\n{self.prose(600)}\n"
                          f"Q: What is {nm}'s locker code?\nA:", "answer": code}

    def cloze(self):
        while True:                             # prose with a sentence that has a word to blank out
            text = self.prose(900)
            sents = [s for s in re.split(r"(?<=\.)\s+", text) if 40 <= len(s) <= 300]
            s = self.r.choice(sents) if sents else ""
            words = [m for m in re.finditer(r"\b[A-Za-z]{5,}\b", s)][1:]
            if words:
                break
        m = self.r.choice(words)
        blanked = s[:m.start()] + "____" + s[m.end():]
        wrap, gap = self.r.choice(self.w.wrappers)
        q = self.r.choice(self.w.cloze).replace("{S}", blanked)
        return {"prompt": text + wrap.replace("{Q}", q), "answer": m.group(0)}

    def ranking(self, k=6):
        f = self.fact()
        passages = [self.prose(self.r.randint(80, 160)) for _ in range(k)]
        j = self.r.randrange(k)
        others = self.r.sample([i for i in range(k) if i != j], 2)
        passages[j] = self.insert(passages[j], self.say(f))
        for i in others:
            passages[i] = self.insert(passages[i], self.say(dict(f, E=D.entity(self.r), V=D.value(self.r, f["kind"]))))
        header, label, ask, _ = self.r.choice(self.w.ranking)
        q = self.ask(f)[1]
        gen = (header + "".join(label.replace("{N}", str(i + 1)) + p for i, p in enumerate(passages))
               + ask.replace("{Q}", q))
        return {"prompt": gen, "answer": str(j + 1), "passages": passages, "query": q, "target": j}

    def insert(self, passage, sentence):
        cuts = [m.end() for m in re.finditer(r"\.\s", passage)] or [len(passage)]
        c = self.r.choice(cuts)
        return passage[:c] + sentence + " " + passage[c:]


@torch.no_grad()
def generate(model, cfg, tok, prompt, n):
    ids = [0] + tok.encode(prompt).ids
    ids = ids[:1] + ids[-(cfg.ctx - n - 1):]
    out = []
    with torch.autocast(DEV, dtype=torch.bfloat16, enabled=DEV == "cuda"):
        for _ in range(n):
            nxt = int(model(torch.tensor([ids], device=DEV))[0, -1].argmax())
            if nxt in (0, 1):
                break
            out.append(nxt)
            ids.append(nxt)
    return tok.decode(out)


@torch.no_grad()
def attention_mass(model, ids, rows, spans):
    """(layers, spans): attention from the given query rows to each span, summed over heads and span
    tokens, averaged over rows. Computed in float32 beside the normal forward."""
    x = model.tok_emb(torch.tensor([ids], device=DEV)).float()
    cos, sin = model.rope_cos, model.rope_sin
    T = len(ids)
    out = []
    for b in model.blocks:
        a, c = b.attn, b.attn.cfg
        h = b.attn_norm(x)
        q = apply_rope(a.wq(h).view(1, T, c.n_head, c.head_dim).transpose(1, 2), cos, sin)[:, :, rows]
        k = apply_rope(a.wk(h).view(1, T, c.n_kv_head, c.head_dim).transpose(1, 2), cos, sin)
        k = k.repeat_interleave(c.n_head // c.n_kv_head, dim=1)
        att = (q @ k.transpose(-1, -2)) / math.sqrt(c.head_dim)
        causal = torch.arange(T, device=DEV)[None, :] <= torch.tensor(rows, device=DEV)[:, None]
        att = att.masked_fill(~causal, float("-inf")).softmax(-1)[0].sum(0)      # (rows, T)
        out.append([float(att[:, s:e].sum(1).mean()) for s, e in spans])
        x = b(x, cos, sin)
    return np.array(out)


def icr_scores(model, tok, passages, query):
    """Heed's ICR layout; per-layer calibrated scores (query rows minus "N/A" rows)."""
    ids, spans = [0] + tok.encode(ICR_HEAD).ids, []
    for i, p in enumerate(passages):
        d = tok.encode(f"\n\n[{i + 1}] {p.strip()}").ids
        spans.append((len(ids), len(ids) + len(d)))
        ids += d
    res = []
    for q in (query, "N/A"):
        tail = tok.encode(ICR_QUERY).ids
        qi = tok.encode(" " + q).ids
        full = ids + tail + qi
        res.append(attention_mass(model, full, list(range(len(full) - len(qi), len(full))), spans))
    return res[0] - res[1]


def bm25_top(passages, query):
    words = lambda s: re.findall(r"[a-z0-9]+", s.lower())  # noqa: E731
    docs = [Counter(words(p)) for p in passages]
    avg = sum(sum(d.values()) for d in docs) / len(docs)
    n = len(docs)
    scores = []
    for d in docs:
        s, dl = 0.0, sum(d.values())
        for w in set(words(query)):
            df = sum(w in e for e in docs)
            if d[w]:
                idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
                s += idf * d[w] * 2.2 / (d[w] + 1.2 * (0.25 + 0.75 * dl / avg))
        scores.append(s)
    return int(np.argmax(scores))


def main():
    from tokenizers import Tokenizer
    tok_path, held_path, out_path = sys.argv[1:4]
    models = dict(a.split("=", 1) for a in sys.argv[4:])
    tok = Tokenizer.from_file(tok_path)
    text = "\n\n".join(json.loads(l)["text"] for l in lzma.open(held_path, "rt", encoding="utf-8"))
    P = Prompts(tok, text)
    sets = {"needle_new_wording_1000": [P.needle(1000) for _ in range(TRIALS)],
            "needle_new_wording_1900": [P.needle(1900) for _ in range(TRIALS)],
            "needles_distractors_1900": [P.needles_distractors() for _ in range(TRIALS)],
            "free_form_locker": [P.locker() for _ in range(TRIALS)],
            "cloze": [P.cloze() for _ in range(TRIALS)],
            "ranking_generation": [P.ranking() for _ in range(TRIALS)]}
    R = {"trials": TRIALS, "examples": {k: v[0]["prompt"][-400:] + " => " + v[0]["answer"] for k, v in sets.items()}}
    R["bm25_ranking_top1"] = float(np.mean([bm25_top(c["passages"], c["query"]) == c["target"]
                                            for c in sets["ranking_generation"]]))
    for name, path in models.items():
        model, cfg = load_gguf(path)
        res, last = {}, {}
        for key, cases in sets.items():
            hits = []
            for c in cases:
                if key == "ranking_generation":
                    g = generate(model, cfg, tok, c["prompt"], 3)
                    m = re.match(r"\s*(\d+)", g)
                    hits.append(bool(m) and m.group(1) == c["answer"])
                else:
                    g = generate(model, cfg, tok, c["prompt"], len(tok.encode(" " + c["answer"]).ids) + 4)
                    hits.append(c["answer"].lower() in g.lower())
                last[key] = g
            res[key] = float(np.mean(hits))
        scores = [icr_scores(model, tok, c["passages"], c["query"]) for c in sets["ranking_generation"]]
        targets = [c["target"] for c in sets["ranking_generation"]]
        res["ranking_attention_top1_per_layer"] = [
            float(np.mean([np.argmax(s[layer]) == t for s, t in zip(scores, targets)])) for layer in range(cfg.n_layer)]
        res["ranking_attention_top1_all_layers"] = float(np.mean([np.argmax(s.sum(0)) == t
                                                                  for s, t in zip(scores, targets)]))
        res["last_generations"] = last
        R[name] = res
        print(name, json.dumps({k: v for k, v in res.items() if k != "last_generations"}), flush=True)
    json.dump(R, open(out_path, "w"), indent=1)


if __name__ == "__main__":
    main()
