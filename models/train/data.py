"""Heed-tiny training data: natural text token arrays + on-the-fly synthetic retrieval episodes.

Natural text (about 60% of rows): Debian documentation corpus (models/.data/corpus_train.jsonl.xz), split
into "docs" and "gcide" (dictionary) groups, plus the Python standard library .py files of the training
machine's interpreter ("code"). Each document is stored as <|bos|> text <|eos|>.

Synthetic rows (the rest): several episodes of up to 2048 tokens each, built at the token level:
  passkey   filler + "The pass key is 48213. Remember it. 48213 is the pass key." + filler
            + "What is the pass key? The pass key is 48213."
  facts     1-4 facts ("The secret number of Alice is 7312.") hidden in natural text, then questions
  kv        a list of random key: value lines, then "What is the value of KEY? VALUE" queries
  passage   labelled natural passages, then "Which passage contains "<quote>"? Passage 7." + continuation
  copy      natural text, then an instruction to repeat a sentence that starts with a quoted prefix, and
            the copy; or random token strings repeated (induction)
Tokens that cannot be predicted (first appearance of random keys/values, query choice) are masked out of
the loss.
"""
import glob
import hashlib
import json
import lzma
import os
import random
import sysconfig

import numpy as np
import torch

BOS, EOS, PAD = 0, 1, 2


def stdlib_files():
    """(train, heldout) lists of .py files of the running interpreter's standard library."""
    root = sysconfig.get_paths()["stdlib"]
    files = sorted(p for p in glob.glob(os.path.join(root, "**", "*.py"), recursive=True)
                   if "site-packages" not in p and "dist-packages" not in p and os.path.getsize(p) < 400_000)
    tr, he = [], []
    for p in files:
        (he if int(hashlib.sha1(os.path.relpath(p, root).encode()).hexdigest(), 16) % 100 < 2 else tr).append(p)
    return tr, he


def _encode_docs(tok, texts, batch=512):
    out = []
    for i in range(0, len(texts), batch):
        for e in tok.encode_batch(texts[i:i + batch], add_special_tokens=False):
            out.append(e.ids)
    return out


def _pack(list_of_ids):
    n = sum(len(x) + 2 for x in list_of_ids)
    arr = np.empty(n, dtype=np.uint16)
    o = 0
    for ids in list_of_ids:
        arr[o] = BOS
        arr[o + 1:o + 1 + len(ids)] = ids
        arr[o + 1 + len(ids)] = EOS
        o += len(ids) + 2
    return arr


def build_arrays(tok, corpus_dir, out_dir):
    """Tokenize the natural corpora once; write uint16 .npy arrays to out_dir. Returns stats."""
    os.makedirs(out_dir, exist_ok=True)
    stats = {}
    groups = {"docs": [], "gcide": [], "heldout_docs": [], "code": [], "heldout_code": []}
    for split, fn in (("", "corpus_train.jsonl.xz"), ("heldout_", "corpus_heldout.jsonl.xz")):
        for line in lzma.open(os.path.join(corpus_dir, fn), "rt", encoding="utf-8"):
            d = json.loads(line)
            g = "gcide" if d["src"] == "dict-gcide" and not split else "docs"
            groups[split + g].append(d["text"])
    tr, he = stdlib_files()
    groups["code"] = [open(p, encoding="utf-8", errors="replace").read() for p in tr]
    groups["heldout_code"] = [open(p, encoding="utf-8", errors="replace").read() for p in he]
    for g, texts in groups.items():
        arr = _pack(_encode_docs(tok, texts))
        np.save(os.path.join(out_dir, g + ".npy"), arr)
        stats[g] = {"docs": len(texts), "chars": sum(map(len, texts)), "tokens": int(len(arr))}
    json.dump(stats, open(os.path.join(out_dir, "stats.json"), "w"), indent=1)
    return stats


# ----------------------------------------------------------------------------- synthetic episodes
NAMES = ("Alice Bob Carol David Erin Frank Grace Heidi Ivan Judy Mallory Niaj Olivia Peggy Rupert Sybil Trent "
         "Victor Walter Yusuf Zoe Amara Bruno Chen Dmitri Elena Fatima Gustav Hana Igor Jamal Keiko Lars Maria "
         "Nadia Omar Priya Quentin Rosa Sanjay Tomas Ursula Vera Wen Ximena Yara Zeke Anders Beatriz").split()
ATTRS = ["secret number", "room number", "lucky number", "favourite colour", "home town", "code word",
         "password", "pet's name", "favourite fruit", "badge number"]
WORDS = ("apple river stone cloud violet amber copper falcon harbor meadow lantern orbit pepper quartz saffron "
         "thunder velvet walnut zephyr cobalt ember glacier indigo jasmine kettle lemon marble nectar olive "
         "prism raven silver tulip umber willow yellow basil cedar dune fern garnet hazel iris juniper kiwi "
         "lotus maple nutmeg onyx pearl quill ruby sage topaz violin wheat yarrow zinc anchor bishop castle "
         "dragon engine feather goblet hammer island jungle kernel ladder mirror needle ocean pillar").split()
COLOURS = "red blue green yellow purple orange teal black white grey pink brown gold crimson navy".split()
TOWNS = ("Paris Oslo Lima Cairo Delhi Tokyo Quito Rome Vienna Dublin Lisbon Prague Nairobi Havana Seoul Perth "
         "Denver Boston Austin Munich Krakow Bergen Porto Kyoto Hanoi Dakar Tunis Riga Tallinn Zagreb").split()
FRUITS = "apple banana cherry mango papaya peach plum pear lime grape melon kiwi guava lychee apricot".split()
CLASSIC = (" The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again.")
KEYNAMES = [("pass key", "The pass key is"), ("passkey", "The passkey is"), ("secret code", "The secret code is"),
            ("access code", "The access code is"), ("magic number", "The magic number is")]
INTRO = ("There is an important info hidden inside a lot of irrelevant text. Find it and memorize it. "
         "I will quiz you about the important information there.")


class Synth:
    def __init__(self, tok, arrays, rng):
        self.tok, self.a, self.r = tok, arrays, rng
        self.cache = {}
        self.classic = self.E(CLASSIC)
        vocab = tok.get_vocab()
        self.nl = np.zeros(len(vocab), dtype=bool)       # tokens that end with a newline
        self.sp = np.zeros(len(vocab), dtype=bool)       # tokens that start with a space
        for t, i in vocab.items():
            self.nl[i] = t.endswith("\u010a")
            self.sp[i] = t.startswith("\u0120")

    def E(self, s):
        v = self.cache.get(s)
        if v is None:
            v = self.tok.encode(s, add_special_tokens=False).ids
            if len(self.cache) < 20000:
                self.cache[s] = v
        return v

    def num(self):
        d = self.r.choice((3, 4, 5, 5, 5, 5, 6, 6, 7))
        return str(self.r.randrange(10 ** (d - 1), 10 ** d))

    def natural(self, n, group=None):
        """n tokens of natural text starting right after a newline, with no BOS/EOS inside."""
        g = group or self.r.choice(("docs", "docs", "docs", "gcide", "code"))
        arr = self.a[g]
        if len(arr) < n + 4096:
            arr = self.a["docs"]
        for _ in range(8):
            o = self.r.randrange(0, len(arr) - n - 300)
            w = arr[o:o + n + 300]
            nls = np.nonzero(self.nl[w[:300]])[0]
            s = int(nls[0]) + 1 if len(nls) else 0
            seg = w[s:s + n]
            if not ((seg == BOS) | (seg == EOS)).any():
                return seg.tolist()
        seg = w[s:s + n]
        return [t for t in seg.tolist() if t > PAD]

    def filler(self, n, kind):
        if n <= 0:
            return []
        if kind == "classic":
            c = self.classic
            return (c * (n // len(c) + 1))[:n]
        return self.natural(n)

    # each episode returns (ids, mask) with mask 1 = train on this token
    def passkey(self, L):
        name, phrase = self.r.choice(KEYNAMES)
        k = self.num()
        kind = "classic" if self.r.random() < 0.45 else "natural"
        intro = self.E(INTRO) if self.r.random() < 0.5 else []
        sep = "\n" if kind == "natural" else " "
        nd = [(self.E(sep + phrase), 1), (self.E(" " + k), 0),
              (self.E(". Remember it."), 1), (self.E(" " + k), 1), (self.E(f" is the {name}.{sep.strip(' ')}"), 1)]
        q = [(self.E(f"{sep}What is the {name}? {phrase}"), 1), (self.E(" " + k), 1), (self.E("."), 1)]
        used = len(intro) + sum(len(x) for x, _ in nd + q)
        f = self.filler(max(0, L - used), kind)
        cut = int(len(f) * self.r.random())
        parts = [(intro, 1), (f[:cut], 1)] + nd + [(f[cut:], 1)] + q
        return _cat(parts)

    def _fact_value(self, attr):
        if "number" in attr:
            return self.num()
        if "colour" in attr:
            return self.r.choice(COLOURS)
        if "town" in attr:
            return self.r.choice(TOWNS)
        if "fruit" in attr:
            return self.r.choice(FRUITS)
        return self.r.choice(WORDS)

    def facts(self, L):
        n = self.r.randint(1, 5)
        names = self.r.sample(NAMES, n)
        attr_same = self.r.random() < 0.5
        attrs = [self.r.choice(ATTRS)] * n if attr_same else [self.r.choice(ATTRS) for _ in range(n)]
        vals = [self._fact_value(a) for a in attrs]
        needles = [[(self.E(f"\nThe {a} of {nm} is"), 1), (self.E(" " + v), 0), (self.E(".\n"), 1)]
                   for a, nm, v in zip(attrs, names, vals)]
        order = list(range(n))
        self.r.shuffle(order)
        nq = self.r.randint(1, n)
        qs = []
        for i in order[:nq]:
            qs += [(self.E(f"\nQuestion: What is the {attrs[i]} of {names[i]}?\nAnswer: The {attrs[i]} of {names[i]} is"), 1),
                   (self.E(" " + vals[i]), 1), (self.E("."), 1)]
        used = sum(len(x) for nd in needles for x, _ in nd) + sum(len(x) for x, _ in qs)
        f = self.filler(max(0, L - used), "natural" if self.r.random() < 0.8 else "classic")
        cuts = sorted(self.r.randrange(0, len(f) + 1) for _ in range(n))
        parts, prev = [], 0
        for c, nd in zip(cuts, needles):
            parts.append((f[prev:c], 1))
            parts += nd
            prev = c
        parts.append((f[prev:], 1))
        return _cat(parts + qs)

    def _key(self):
        r = self.r.random()
        if r < 0.4:
            return "%04x-%04x" % (self.r.randrange(65536), self.r.randrange(65536))
        if r < 0.7:
            return f"{self.r.choice(WORDS)}-{self.r.randrange(1000)}"
        return f"{self.r.choice(WORDS)}_{self.r.choice(WORDS)}"

    def kv(self, L):
        parts = [(self.E(self.r.choice(["Below is a list of keys and their values.",
                                        "Here is a table of keys and values.", "Key-value store dump:"])), 1)]
        used, pairs, seen = len(parts[0][0]), [], set()
        wordval = self.r.random() < 0.3
        while True:
            k = self._key()
            if k in seen:
                continue
            v = self.r.choice(WORDS) if wordval else self.num()
            line = [(self.E("\n" + k), 0), (self.E(":"), 1), (self.E(" " + v), 0)]
            n = sum(len(x) for x, _ in line)
            if used + n + 110 > L:
                break
            seen.add(k)
            pairs.append((k, v))
            parts += line
            used += n
        if not pairs:
            return self.passkey(L)
        parts.append((self.E("\n"), 1))
        for k, v in self.r.sample(pairs, min(len(pairs), self.r.randint(1, 4))):
            parts += [(self.E("\nWhat is the value of"), 1), (self.E(" " + k), 0), (self.E("?"), 1),
                      (self.E(" " + v), 1)]
        return _cat(parts)

    def passage(self, L):
        parts, used, ps = [], 0, []
        i = 1
        while used < L - 120:
            n = self.r.randint(40, 200)
            if used + n + 100 > L:
                break
            t = self.natural(n, self.r.choice(("docs", "docs", "gcide", "code")))
            head = self.E(f"\nPassage {i}:\n")
            parts += [(head, 1), (t, 1)]
            ps.append(t)
            used += len(head) + len(t)
            i += 1
        if len(ps) < 2:
            return self.facts(L)
        j = self.r.randrange(len(ps))
        t = ps[j]
        starts = [s for s in range(0, max(1, len(t) - 30)) if self.sp[t[s]]] or [0]
        s = self.r.choice(starts)
        ql = self.r.randint(6, 14)
        quote = self.tok.decode(t[s:s + ql]).strip()
        parts += [(self.E("\nQuestion: Which passage contains \""), 1), (self.E(quote), 0),
                  (self.E("\"?\nAnswer: Passage"), 1), (self.E(f" {j + 1}"), 1), (self.E("."), 1)]
        if self.r.random() < 0.6:
            cont = t[s + ql:s + ql + self.r.randint(8, 30)]
            parts += [(self.E(" It continues:"), 1), (self.E(" " + quote), 1), (cont, 1)]
        return _cat(parts)

    def copy(self, L):
        if self.r.random() < 0.3:          # random token induction
            n = self.r.randint(10, 120)
            seq = [self.r.randrange(3, len(self.nl)) for _ in range(n)]
            reps = max(2, min(6, L // max(1, n)))
            parts = [(seq, 0)] + [(seq, 1)] * (reps - 1)
            return _cat(parts)
        n = self.r.randint(100, max(101, L - 120))
        t = self.natural(n)
        starts = [s for s in range(0, max(1, len(t) - 60)) if self.sp[t[s]]] or [0]
        s = self.r.choice(starts)
        pre = self.tok.decode(t[s:s + 5]).strip()
        m = self.r.randint(15, 60)
        return _cat([(t, 1), (self.E(f"\nRepeat the text that starts with \"{pre}\":"), 1),
                     (self.E(" " + pre), 1), (t[s + 5:s + 5 + m], 1)])

    def episode(self, L):
        r = self.r.random()
        if r < 0.30:
            return self.passkey(L)
        if r < 0.52:
            return self.facts(L)
        if r < 0.70:
            return self.kv(L)
        if r < 0.85:
            return self.passage(L)
        return self.copy(L)

    def row(self, T):
        ids, mask = [], []
        while len(ids) < T:
            room = T - len(ids)
            if room < 200:
                t = self.natural(room + 2)
                ids += t
                mask += [1] * len(t)
                continue
            L = min(room - 2, self.r.choice((self.r.randint(200, 2046), self.r.randint(1000, 2046))))
            e, m = self.episode(L)
            e, m = e[:L], m[:L]
            ids += [BOS] + e + [EOS]
            mask += [1] + m + [1]
        return ids[:T], mask[:T]


def _cat(parts):
    ids, mask = [], []
    for x, m in parts:
        ids += list(x)
        mask += [m] * len(x)
    return ids, mask


class Stream(torch.utils.data.IterableDataset):
    """Yields (x, y, is_synth) batches; y = -100 where masked."""

    def __init__(self, tok_path, arr_dir, batch, T, p_synth, seed, weights=(("docs", 0.55), ("gcide", 0.3), ("code", 0.15))):
        self.tok_path, self.arr_dir, self.B, self.T, self.p = tok_path, arr_dir, batch, T, p_synth
        self.seed, self.weights = seed, weights

    def __iter__(self):
        from tokenizers import Tokenizer
        wi = torch.utils.data.get_worker_info()
        wid = wi.id if wi else 0
        r = random.Random(self.seed * 1000 + wid)
        arrays = {g: np.load(os.path.join(self.arr_dir, g + ".npy"), mmap_mode="r") for g in ("docs", "gcide", "code")}
        syn = Synth(Tokenizer.from_file(self.tok_path), arrays, r)
        groups = [g for g, _ in self.weights if len(arrays[g]) > 4 * self.T]
        w = [x for g, x in self.weights if g in groups]
        T1 = self.T + 1
        while True:
            X = np.empty((self.B, T1), dtype=np.int64)
            M = np.ones((self.B, T1), dtype=bool)
            S = np.zeros(self.B, dtype=bool)
            for b in range(self.B):
                if r.random() < self.p:
                    ids, mask = syn.row(T1)
                    X[b] = ids
                    M[b] = mask
                    S[b] = True
                else:
                    arr = arrays[r.choices(groups, w)[0]]
                    o = r.randrange(0, len(arr) - T1)
                    X[b] = arr[o:o + T1]
            x = torch.from_numpy(X[:, :-1].copy())
            y = torch.from_numpy(np.where(M[:, 1:], X[:, 1:], -100))
            yield x, y, torch.from_numpy(S)
