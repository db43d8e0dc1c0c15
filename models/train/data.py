"""heed-small training data: natural text token arrays + on-the-fly synthetic retrieval episodes.

Natural text (a third of the rows: 1 - train.py's --p-synth): the Debian documentation corpus
(models/.corpus/corpus_train.jsonl.xz), split into "docs" and "gcide" (dictionary) groups, plus the Python
standard library .py files of the training machine's interpreter ("code"). Each document is stored as
<|bos|> text <|eos|>.

Synthetic rows (the other two thirds): episodes of up to 2048 tokens each, built at the token level, worded
from the TRAIN_* lists of templates.py (the HELDOUT_* lists are for evaluation only):
  facts     1-6 facts about made-up entities written as sentences inside real prose (any of 22 sentence
            forms, 20 attributes with 2-3 names each), distractor sentences that share the question's words,
            then 1-3 questions in any of 11 forms and 8 wrappers, answered with the value
  ranking   3-10 labelled passages of real prose (4 formats, one of them Heed's ICR prompt); one holds the
            answer to the question (a fact, or the sentence a question is about), others hard negatives
            (the same entity or the same attribute); the answer is the passage's label
  cloze     real prose, then questions about its sentences: fill in a blank, or "What is X?" for
            sentences of the form "The X is Y."
  paraphrase  real prose, then questions about its sentences worded apart from them: a word of the sentence
            (a number, a name or another word) is asked for with a wh-phrase, and other words are replaced
            by WordNet synonyms (synonyms.json.xz, from prep_synonyms.py) or the question lists a few of the
            sentence's words in another order
  passkey, kv, copy   heed-tiny's pass key, key: value and copy/induction episodes; the pass key and the
            value are asked for in their own words or, half the time, through a question wrapper
Questions come in the listed wrappers or in generated ones (a marker word for the question and one for the
answer, in one of a dozen layouts; templates.py says what they leave out).

Block attention (Stream's p_block share of batches): rows of ranking episodes in Heed's ICR prompt whose
passages attend only to themselves and what precedes the list, while the question sees everything. The
segment ids that say so come with the batch (0: sees and is seen by everything before it; k > 0: one passage).
Tokens that cannot be predicted (the first appearance of a random value) are masked out of the loss.
"""
import glob
import hashlib
import json
import lzma
import os
import random
import re
import sysconfig

import numpy as np
import torch

import templates as TPL

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
    syn = os.path.join(corpus_dir, "synonyms.json.xz")
    if os.path.exists(syn):
        with lzma.open(syn, "rt", encoding="utf-8") as f, open(os.path.join(out_dir, "synonyms.json"), "w") as g:
            g.write(f.read())
    json.dump(stats, open(os.path.join(out_dir, "stats.json"), "w"), indent=1)
    return stats


# ----------------------------------------------------------------------------- synthetic episodes
FIRST = ("Alice Bob Carol David Erin Frank Grace Heidi Ivan Judy Mallory Olivia Peggy Rupert Sybil Trent "
         "Victor Walter Yusuf Zoe Amara Bruno Chen Dmitri Elena Fatima Gustav Hana Igor Jamal Keiko Lars Maria "
         "Nadia Omar Priya Quentin Rosa Sanjay Tomas Ursula Vera Wen Ximena Yara Zeke Anders Beatriz").split()
SYLLABLES = ("ka ro lin mar te vo sel da ri bel quo nor pe tal wen gri os fa lu dor vin sha mel ko ta zen "
             "bra cel dun ev har is jor kel mo nik pra rud sor tev ul var wyn").split()
THINGS = ("server project ship account library village committee laboratory warehouse studio bakery "
          "station cluster vessel archive orchestra").split()
WORDS = ("apple river stone cloud violet amber copper falcon harbor meadow lantern orbit pepper quartz saffron "
         "thunder velvet walnut zephyr cobalt ember glacier indigo jasmine kettle lemon marble nectar olive "
         "prism raven silver tulip umber willow yellow basil cedar dune fern garnet hazel iris juniper kiwi "
         "lotus maple nutmeg onyx pearl quill ruby sage topaz violin wheat yarrow zinc anchor bishop castle "
         "dragon engine feather goblet hammer island jungle kernel ladder mirror needle ocean pillar").split()
COLOURS = "red blue green yellow purple orange teal black white grey pink brown gold crimson navy".split()
TOWNS = ("Paris Oslo Lima Cairo Delhi Tokyo Quito Rome Vienna Dublin Lisbon Prague Nairobi Havana Seoul Perth "
         "Denver Boston Austin Munich Krakow Bergen Porto Kyoto Hanoi Dakar Tunis Riga Tallinn Zagreb").split()
FRUITS = "apple banana cherry mango papaya peach plum pear lime grape melon kiwi guava lychee apricot".split()
ANIMALS = "otter heron lynx badger falcon tortoise gecko walrus ibex marmot puffin jackal".split()
WEEKDAYS = "Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split()
MONTHS = ("January February March April May June July August September October November "
          "December").split()
CLASSIC = " The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again."
INTRO = ("There is an important info hidden inside a lot of irrelevant text. Find it and memorize it. "
         "I will quiz you about the important information there.")
WH = re.compile(r"^(The|A|An) ([A-Za-z][\w-]*(?: [\w-]+){0,3}) (is|are) (.{8,120})\.$")
WORD = re.compile(r"[A-Za-z0-9][\w'-]*")
STOPWORDS = set("""a an the of to in on at by for with from and or but is are was were be been being it its this that
these those as into than then so such not no can could will would should may might must do does did has have had
which who what when where how why there their they them he she his her we our you your i if also only more most
other some any each all one two use used using see""".split())
VOWELS = set("aeiou")


class Paraphraser:
    """Rewords text by replacing words with WordNet synonyms (prep_synonyms.py), keeping simple inflections."""

    SUFFIXES = (("ies", "y"), ("es", ""), ("s", ""), ("ed", ""), ("ed", "e"), ("ing", ""), ("ing", "e"))

    def __init__(self, table, rng):
        self.syn, self.irregular, self.r = table["synonyms"], table["irregular"], rng

    def base(self, w):
        """(base form in the table, suffix to put back), or (None, None)."""
        if w in self.syn:
            return w, ""
        if self.irregular.get(w) in self.syn:
            return self.irregular[w], ""
        for suf, cut in self.SUFFIXES:
            if w.endswith(suf) and len(w) > len(suf) + 2 and w[:-len(suf)] + cut in self.syn:
                return w[:-len(suf)] + cut, "s" if suf == "ies" else suf
        return None, None

    @staticmethod
    def inflect(word, suf):
        if not suf:
            return word
        head, _, last = word.rpartition(" ")
        if suf in ("ing", "ed") and last.endswith("e"):
            last = last[:-1]
        elif suf in ("s", "es"):
            suf = "es" if last.endswith(("s", "sh", "ch", "x", "z")) else "s"
            if last.endswith("y") and len(last) > 1 and last[-2] not in VOWELS:
                last, suf = last[:-1], "ies"
        return (head + " " if head else "") + last + suf

    def __call__(self, text, p):
        """Each lower-case content word of 3+ letters is replaced with probability p."""
        def swap(m):
            w = m.group(0)
            if not w.islower() or not w.isalpha() or len(w) < 3 or w in STOPWORDS or self.r.random() >= p:
                return w
            b, suf = self.base(w)
            if b is None:
                return w
            options = self.syn[b][:4]
            return self.inflect(self.r.choice(options), suf)
        return WORD.sub(swap, text)


def made_up_word(r):
    return "".join(r.choice(SYLLABLES) for _ in range(r.randint(2, 3))).capitalize()


def entity(r):
    """A made-up person or thing; many are new token strings, so the model must copy rather than recall."""
    x = r.random()
    if x < 0.45:
        return f"{r.choice(FIRST) if r.random() < 0.5 else made_up_word(r)} {made_up_word(r)}"
    if x < 0.6:
        return r.choice(FIRST)
    if x < 0.8:
        return f"the {made_up_word(r)} {r.choice(THINGS)}"
    return f"{r.choice(('Project', 'Team', 'Station', 'Studio'))} {made_up_word(r)}"


def value(r, kind):
    if kind == "number":
        digits = r.choice((3, 4, 4, 5, 5, 6, 7))
        return str(r.randrange(10 ** (digits - 1), 10 ** digits))
    if kind == "password":
        return f"{r.choice(WORDS)}-{r.randrange(10, 10000)}"
    if kind == "plate":
        return f"{chr(65 + r.randrange(26))}{chr(65 + r.randrange(26))}-{r.randrange(100, 10000)}"
    if kind == "date":
        return f"{r.choice(MONTHS)} {r.randint(1, 28)}, {r.randint(1980, 2030)}"
    if kind == "version":
        return f"{r.randint(0, 12)}.{r.randint(0, 30)}.{r.randint(0, 9)}"
    if kind == "money":
        return f"${r.randint(1, 999)},{r.randrange(1000):03d}"
    if kind == "flight":
        return f"{chr(65 + r.randrange(26))}{chr(65 + r.randrange(26))} {r.randrange(10, 1000)}"
    if kind == "person":
        return f"{r.choice(FIRST)} {made_up_word(r)}"
    if kind == "name":
        return made_up_word(r)
    pool = {"colour": COLOURS, "town": TOWNS, "fruit": FRUITS, "word": WORDS, "weekday": WEEKDAYS,
            "animal": ANIMALS}[kind]
    return r.choice(pool)


def sentence_case(text):
    """Capitalise the first letter, so that an entity like "the X server" opens a sentence well."""
    return text[0].upper() + text[1:]


class Wording:
    """One side (training or held-out) of the templates in templates.py."""

    def __init__(self, heldout):
        self.heldout = heldout
        side = "HELDOUT_" if heldout else "TRAIN_"
        for name in ("ATTRIBUTES", "FACTS", "QUESTIONS", "WRAPPERS", "CLOZE", "RANKING"):
            setattr(self, name.lower(), getattr(TPL, side + name))
        self.mentions = TPL.TRAIN_MENTIONS


class Synth:
    """Builds episodes as token ids with a loss mask (1 = train on this token)."""

    def __init__(self, tok, arrays, rng, wording=None, synonyms=None):
        self.tok, self.a, self.r = tok, arrays, rng
        self.w = wording or Wording(heldout=False)
        self.para = Paraphraser(synonyms or {"synonyms": {}, "irregular": {}}, rng)
        self.cache = {}
        self.classic = self.E(CLASSIC)
        vocab = tok.get_vocab()
        self.nl = np.zeros(len(vocab), dtype=bool)       # tokens that end with a newline
        self.sp = np.zeros(len(vocab), dtype=bool)       # tokens that start with a space
        self.stop = np.zeros(len(vocab), dtype=bool)     # tokens that end a sentence
        self.word = np.zeros(len(vocab), dtype=bool)     # " word" tokens worth asking for (4+ letters or digits)
        for t, i in vocab.items():
            self.nl[i] = t.endswith("\u010a")
            self.sp[i] = t.startswith("\u0120")
            self.stop[i] = t in (".", "?", "!")
            body = t[1:]
            self.word[i] = t.startswith("\u0120") and ((body.isalpha() and len(body) >= 4) or body.isdigit())

    def E(self, s):
        v = self.cache.get(s)
        if v is None:
            v = self.tok.encode(s, add_special_tokens=False).ids
            if len(self.cache) < 50000:
                self.cache[s] = v
        return v

    def num(self):
        return value(self.r, "number")

    def wrapper(self):
        """(question wrapper, gap before the answer): InfiniRetri's own a quarter of the time, then a listed
        one or a generated one."""
        x = self.r.random()
        if x < 0.25 and not self.w.heldout:
            return self.w.wrappers[0]
        if x < 0.6 or self.w.heldout:
            return self.r.choice(self.w.wrappers)
        layout, gap = self.r.choice(TPL.TRAIN_WRAPPER_LAYOUTS)
        q, a = self.r.choice(TPL.TRAIN_WRAPPER_ASK), self.r.choice(TPL.TRAIN_WRAPPER_ANSWER)
        for k, v in (("{QU}", q.upper()), ("{AU}", a.upper()), ("{ql}", q.lower()), ("{al}", a.lower()),
                     ("{q}", q), ("{a}", a)):
            layout = layout.replace(k, v)
        return layout, gap

    def natural(self, n, group=None):
        """n tokens of natural text starting right after a newline, with no BOS/EOS inside."""
        g = group or self.r.choice(("docs", "docs", "docs", "docs", "gcide", "code"))
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
        return [t for t in seg.tolist() if t > PAD]

    def filler(self, n, kind):
        if n <= 0:
            return []
        if kind == "classic":
            c = self.classic
            return (c * (n // len(c) + 1))[:n]
        return self.natural(n, "docs" if self.r.random() < 0.8 else None)

    # ------------------------------------------------------------------ facts about made-up entities
    def make_fact(self):
        names, kind = self.r.choice(self.w.attributes)
        return {"E": entity(self.r), "names": names, "kind": kind, "V": value(self.r, kind)}

    def fact_pieces(self, f, sep, template=None):
        """The fact as a sentence: [(ids, mask)], its value's first appearance masked out of the loss."""
        t = (template or self.r.choice(self.w.facts)).replace("{E}", f["E"]).replace("{A}", self.r.choice(f["names"]))
        before, after = sentence_case(t).split("{V}")
        if before:
            before, v = sep + before.rstrip(" "), " " + f["V"]
        else:                                   # the value opens the sentence
            v = sep + f["V"]
        return [(self.E(before), 1), (self.E(v), 0), (self.E(after), 1)]

    def mention_pieces(self, f, sep):
        t = self.r.choice(self.w.mentions).replace("{E}", f["E"]).replace("{A}", self.r.choice(f["names"]))
        return [(self.E(sep + sentence_case(t)), 1)]

    def ask(self, f):
        q = self.r.choice(self.w.questions).replace("{E}", f["E"]).replace("{A}", self.r.choice(f["names"]))
        if self.r.random() < 0.3:
            q = self.para(q, 0.5)
        return sentence_case(q)

    def question_pieces(self, f):
        q = self.ask(f)
        wrap, gap = self.wrapper()
        return [(self.E(wrap.replace("{Q}", q)), 1), (self.E(gap + f["V"]), 1), (self.E("." if self.r.random() < 0.5 else "\n"), 1)]

    def insert(self, filler, pieces_list):
        """Put each sentence (a list of pieces) into the filler at a sentence end or a line start."""
        n = len(filler)
        spots = [i + 1 for i in range(n - 1)
                 if self.nl[filler[i]] or (self.stop[filler[i]] and (self.sp[filler[i + 1]] or self.nl[filler[i + 1]]))]
        cuts = sorted(self.r.choice(spots or [n]) for _ in pieces_list)
        parts, prev = [], 0
        for c, pieces in zip(cuts, pieces_list):
            parts.append((filler[prev:c], 1))
            line_start = c > 0 and self.nl[filler[c - 1]]
            parts += pieces("" if line_start else " ")
            if line_start:
                parts.append((self.E("\n"), 1))
            prev = c
        parts.append((filler[prev:], 1))
        return parts

    def facts(self, L):
        """1-6 facts and distractor mentions in prose, then 1-3 questions."""
        n = self.r.randint(1, 6)
        fs = [self.make_fact() for _ in range(n)]
        if n > 1 and self.r.random() < 0.5:           # same attribute for all: the entity decides
            for f in fs[1:]:
                f["names"], f["kind"], f["V"] = fs[0]["names"], fs[0]["kind"], value(self.r, fs[0]["kind"])
        if n > 1 and self.r.random() < 0.3:           # one entity with several attributes
            for f in fs[1:]:
                f["E"] = fs[0]["E"]
        fs = [f for i, f in enumerate(fs) if all((f["E"], f["names"]) != (g["E"], g["names"]) for g in fs[:i])]
        sentences = [lambda sep, f=f: self.fact_pieces(f, sep) for f in fs]
        sentences += [lambda sep, f=self.r.choice(fs): self.mention_pieces(f, sep)
                      for _ in range(self.r.choice((0, 0, 1, 2)))]
        self.r.shuffle(sentences)
        qs = []
        for f in self.r.sample(fs, self.r.randint(1, min(3, len(fs)))):
            qs += self.question_pieces(f)
        intro = [(self.E(INTRO + "\n"), 1)] if self.r.random() < 0.1 else []
        used = sum(len(x) for x, _ in intro + qs) + sum(len(x) + 2 for s in sentences for x, _ in s(" "))
        f = self.filler(max(0, L - used), "natural" if self.r.random() < 0.9 else "classic")
        return _cat(intro + self.insert(f, sentences) + qs)

    # ------------------------------------------------------------------ questions about real sentences
    def sentences_in(self, ids):
        """(start, end) token spans of sentences of 8-60 tokens (end: just past the full stop)."""
        ends = [i + 1 for i in range(len(ids)) if self.stop[ids[i]] or self.nl[ids[i]]]
        return [(a, b) for a, b in zip(ends, ends[1:]) if 8 <= b - a <= 60 and self.stop[ids[b - 1]]]

    def sentence_question(self, ids, span):
        """A question about the sentence ids[span], answerable by copying from it: (question, answer)."""
        a, b = span
        text = self.tok.decode(ids[a:b]).strip()
        m = WH.match(text)
        if m and self.r.random() < 0.5:
            return f"What {m.group(3)} {m.group(1).lower()} {m.group(2)}?", m.group(4)
        words = [i for i in range(a + 2, b - 1) if self.word[ids[i]]]
        if not words:
            return None
        i = self.r.choice(words)
        blanked = (self.tok.decode(ids[a:i]) + " ____" + self.tok.decode(ids[i + 1:b])).strip()
        return self.r.choice(self.w.cloze).replace("{S}", blanked), self.tok.decode([ids[i]]).strip()

    def wh_question(self, ids, span):
        """A question about the sentence ids[span] worded apart from it: (question, answer). One word of it
        (a number, a name, or another content word) is asked for with a wh-phrase; other words become
        synonyms, or the question only lists some of the sentence's words in another order."""
        a, b = span
        text = " ".join(self.tok.decode(ids[a:b]).split())
        words = list(WORD.finditer(text))
        nums = [m for m in words if m.group(0).isdigit()]
        names = [m for m in words[1:] if m.group(0)[0].isupper() and len(m.group(0)) >= 3
                 and m.group(0).lower() not in STOPWORDS]
        other = [m for m in words[1:] if m.group(0).isalpha() and m.group(0).islower() and len(m.group(0)) >= 5
                 and m.group(0) not in STOPWORDS]
        pick = [g for g in (nums, names, other) if g]
        if not pick:
            return None
        group = self.r.choice(pick)
        m = self.r.choice(group)
        wh = self.r.choice({id(nums): ("how many", "what number", "which number", "what value"),
                            id(names): ("which name", "what", "which one"),
                            id(other): ("what", "which word", "what thing")}[id(group)])
        answer = m.group(0)
        if self.r.random() < 0.2:                        # a few of its words, in another order
            keys = [w.group(0) for w in words if w is not m and w.group(0).lower() not in STOPWORDS]
            if len(keys) < 3:
                return None
            keys = self.r.sample(keys, min(len(keys), self.r.randint(3, 6)))
            q = f"{wh.capitalize()} goes with {', '.join(self.para(k, 0.3) for k in keys)}?"
        else:
            before = self.para(text[:m.start()], 0.45)
            after = self.para(text[m.end():], 0.45).rstrip(" .!")
            q = (before + wh + after).strip() + "?"
            if self.r.random() < 0.3:
                q = self.r.choice(("According to the text, ", "In the text above, ", "From the passage: ")) + \
                    q[0].lower() + q[1:]
            q = sentence_case(q)
        return (q, answer) if answer not in q else None

    def questions_on_prose(self, t, L, tries, question):
        """The prose t, then 1-3 questions made by question(t, span) about its sentences (up to `tries`
        sentences looked at), each in a wrapper and answered, within L tokens: (parts, how many were asked)."""
        parts, used = [(t, 1)], len(t)
        spans = self.sentences_in(t)
        self.r.shuffle(spans)
        asked, wanted = 0, self.r.randint(1, 3)
        for span in spans[:tries]:
            qa = question(t, span)
            if qa is None:
                continue
            q, ans = qa
            wrap, gap = self.wrapper()
            qa_parts = [(self.E(wrap.replace("{Q}", q)), 1), (self.E(gap + ans), 1), (self.E("\n"), 1)]
            n = sum(len(x) for x, _ in qa_parts)
            if used + n > L:
                break
            parts += qa_parts
            used += n
            asked += 1
            if asked == wanted:
                break
        return parts, asked

    def paraphrase(self, L):
        """Natural text, then 1-3 questions about its sentences, worded apart from them."""
        t = self.natural(max(60, L - 250), "docs" if self.r.random() < 0.85 else None)
        parts, asked = self.questions_on_prose(t, L, 8, self.wh_question)
        return _cat(parts) if asked else self.cloze(L)

    def cloze(self, L):
        """Natural text, then 1-3 questions about its sentences (fill the blank, or what X is)."""
        t = self.natural(max(60, L - 250))
        parts, asked = self.questions_on_prose(t, L, 6, self.sentence_question)
        return _cat(parts) if asked else self.copy(L)

    # ------------------------------------------------------------------ which passage answers
    def ranking(self, L, block=False):
        """Labelled passages of real text; one holds the answer (a fact, or the sentence asked about),
        others hold hard negatives (the same entity or attribute); the answer is the passage's label, or,
        in the "[*]" format, its first words. With block=True (Heed's ICR prompt only) the result has a
        third list: segment ids, k for the tokens of passage k, 0 elsewhere."""
        if block or self.r.random() < 0.1:
            fmt = TPL.TRAIN_RANKING_UNNUMBERED if self.r.random() < 0.5 else None
            header, label, ask, close = (*fmt, "") if fmt else self.w.ranking[0]
        else:
            fmt = None
            header, label, ask, close = self.r.choice(self.w.ranking)
        k = self.r.randint(3, 10)
        per = max(30, min(180, (L - 250) // k - 8))
        passages = [self.natural(self.r.randint(per // 2, per), "docs" if self.r.random() < 0.85 else None)
                    for _ in range(k)]
        j = self.r.randrange(k)
        bodies = [[(p, 1)] for p in passages]
        if self.r.random() < 0.5:
            f = self.make_fact()
            bodies[j] = self.insert(passages[j], [lambda sep: self.fact_pieces(f, sep)])
            for i in self.r.sample([i for i in range(k) if i != j], min(k - 1, self.r.randint(0, 3))):
                g = dict(f, V=value(self.r, f["kind"]))
                if self.r.random() < 0.5:
                    g["E"] = entity(self.r)
                else:
                    g["names"], g["kind"] = self.r.choice(self.w.attributes)
                    g["V"] = value(self.r, g["kind"])
                kind = self.r.random()
                sentence = (lambda sep, g=g: self.fact_pieces(g, sep)) if kind < 0.7 else \
                    (lambda sep, g=f: self.mention_pieces(g, sep))
                bodies[i] = self.insert(passages[i], [sentence])
            q = self.ask(f)
        else:
            spans = self.sentences_in(passages[j])
            span = self.r.choice(spans) if spans else None
            qa = None if span is None else \
                self.wh_question(passages[j], span) if self.r.random() < 0.7 else self.sentence_question(passages[j], span)
            if qa is None:
                return self.facts(L) if not block else self.ranking(L, block)
            q = qa[0]
        parts = [(self.E(header), 1, 0)] if header else []
        for i, body in enumerate(bodies):
            parts += [(self.E(label.replace("{N}", str(i + 1))), 1, i + 1)] + [(x, m, i + 1) for x, m in body]
        if fmt:
            first = [t for x, _ in bodies[j] for t in x][:6]
            target = self.E(" " + self.tok.decode(first).strip())
        else:
            target = self.E(f"{j + 1}{close}")
        parts += [(self.E(ask.replace("{Q}", q)), 1, 0), (target, 1, 0), (self.E("\n"), 1, 0)]
        ids, mask = _cat([(x, m) for x, m, _ in parts])
        return (ids, mask, [sg for x, _, sg in parts for _ in x]) if block else (ids, mask)

    # ------------------------------------------------------------------ heed-tiny's tasks, kept at a lower share
    def passkey(self, L):
        name, phrase = self.r.choice(TPL.KEYNAMES)
        k = self.num()
        kind = "classic" if self.r.random() < 0.45 else "natural"
        intro = self.E(INTRO) if self.r.random() < 0.5 else []
        sep = "\n" if kind == "natural" else " "
        nd = [(self.E(sep + phrase), 1), (self.E(" " + k), 0),
              (self.E(". Remember it."), 1), (self.E(" " + k), 1), (self.E(f" is the {name}.{sep.strip(' ')}"), 1)]
        if self.r.random() < 0.5:
            q = [(self.E(f"{sep}What is the {name}? {phrase}"), 1), (self.E(" " + k), 1), (self.E("."), 1)]
        else:  # asked through a question wrapper, as InfiniRetri's answer step asks: the value copied after it
            wrap, gap = self.wrapper()
            q = [(self.E(wrap.replace("{Q}", f"What is the {name}?")), 1), (self.E(gap + k), 1), (self.E("."), 1)]
        used = len(intro) + sum(len(x) for x, _ in nd + q)
        f = self.filler(max(0, L - used), kind)
        cut = int(len(f) * self.r.random())
        return _cat([(intro, 1), (f[:cut], 1)] + nd + [(f[cut:], 1)] + q)

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
            if self.r.random() < 0.5:
                parts += [(self.E("\nWhat is the value of"), 1), (self.E(" " + k), 0), (self.E("?"), 1),
                          (self.E(" " + v), 1)]
            else:
                wrap, gap = self.wrapper()
                parts += [(self.E(wrap.replace("{Q}", f"What is the value of {k}?")), 1), (self.E(gap + v), 1)]
        return _cat(parts)

    def copy(self, L):
        if self.r.random() < 0.3:          # random token induction
            n = self.r.randint(10, 120)
            seq = [self.r.randrange(3, len(self.nl)) for _ in range(n)]
            reps = max(2, min(6, L // max(1, n)))
            return _cat([(seq, 0)] + [(seq, 1)] * (reps - 1))
        n = self.r.randint(100, max(101, L - 120))
        t = self.natural(n)
        starts = [s for s in range(0, max(1, len(t) - 60)) if self.sp[t[s]]] or [0]
        s = self.r.choice(starts)
        pre = self.tok.decode(t[s:s + 5]).strip()
        m = self.r.randint(15, 60)
        return _cat([(t, 1), (self.E(f"\nRepeat the text that starts with \"{pre}\":"), 1),
                     (self.E(" " + pre), 1), (t[s + 5:s + 5 + m], 1)])

    # Round 2's run D: the copying episodes at 12/8/8% (run C: 8/6/6%). With less, a value asked for through a
    # wrapper came back with a digit changed ("It is 21432." for 71432); with more, ranking got worse
    # (models/README.md, "Round 2").
    MIX = (("facts", 0.22), ("paraphrase", 0.18), ("ranking", 0.22), ("cloze", 0.1), ("passkey", 0.12), ("kv", 0.08),
           ("copy", 0.08))

    def episode(self, L):
        """An episode of at most about L tokens; one that came out longer (short L) is drawn again."""
        for _ in range(3):
            kind = self.r.choices([k for k, _ in self.MIX], [w for _, w in self.MIX])[0]
            ids, mask = getattr(self, kind)(L)
            if len(ids) <= L + 1:
                break
        return ids, mask

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


    def block_row(self, T):
        """A row of ranking episodes in Heed's ICR prompt for block attention: (ids, mask, segment ids), each
        passage of the row a segment of its own, everything else segment 0."""
        ids, mask, seg, next_seg = [], [], [], 1
        while len(ids) < T:
            room = T - len(ids)
            if room < 400:
                t = self.natural(room + 2)
                ids, mask, seg = ids + t, mask + [1] * len(t), seg + [0] * len(t)
                continue
            L = min(room - 2, self.r.randint(400, 2046))
            e, m, g = self.ranking(L, block=True)
            e, m, g = e[:L], m[:L], g[:L]
            ids += [BOS] + e + [EOS]
            mask += [1] + m + [1]
            seg += [0] + [x + next_seg - 1 if x else 0 for x in g] + [0]
            next_seg += max(g)
        return ids[:T], mask[:T], seg[:T]


def block_mask(seg):
    """Attention mask (B, 1, T, T), True where a query may attend: causal, and a token of passage k > 0 sees
    only its passage and segment-0 tokens; segment-0 tokens see everything before them."""
    T = seg.shape[1]
    causal = torch.ones(T, T, dtype=torch.bool, device=seg.device).tril()
    q, k = seg[:, :, None], seg[:, None, :]
    return (causal & ((q == k) | (k == 0) | (q == 0)))[:, None]


def _cat(parts):
    ids, mask = [], []
    for x, m in parts:
        ids += list(x)
        mask += [m] * len(x)
    return ids, mask


class Stream(torch.utils.data.IterableDataset):
    """Yields (x, y, is_synth, seg) batches; y = -100 where masked; seg: segment ids (B, T) of a block-attention
    batch (a p_block share of the batches), or an empty tensor."""

    def __init__(self, tok_path, arr_dir, batch, T, p_synth, seed, weights=(("docs", 0.76), ("gcide", 0.06), ("code", 0.18)),
                 p_block=0.0):
        self.tok_path, self.arr_dir, self.B, self.T, self.p = tok_path, arr_dir, batch, T, p_synth
        self.seed, self.weights, self.p_block = seed, weights, p_block

    def __iter__(self):
        from tokenizers import Tokenizer
        wi = torch.utils.data.get_worker_info()
        wid = wi.id if wi else 0
        r = random.Random(self.seed * 1000 + wid)
        arrays = {g: np.load(os.path.join(self.arr_dir, g + ".npy"), mmap_mode="r") for g in ("docs", "gcide", "code")}
        path = os.path.join(self.arr_dir, "synonyms.json")
        synonyms = json.load(open(path, encoding="utf-8")) if os.path.exists(path) else None
        syn = Synth(Tokenizer.from_file(self.tok_path), arrays, r, synonyms=synonyms)
        groups = [g for g, _ in self.weights if len(arrays[g]) > 4 * self.T]
        w = [x for g, x in self.weights if g in groups]
        T1 = self.T + 1
        while True:
            X = np.empty((self.B, T1), dtype=np.int64)
            M = np.ones((self.B, T1), dtype=bool)
            S = np.zeros(self.B, dtype=bool)
            if r.random() < self.p_block:
                G = np.zeros((self.B, T1), dtype=np.int64)
                for b in range(self.B):
                    X[b], M[b], G[b] = syn.block_row(T1)
                yield (torch.from_numpy(X[:, :-1].copy()), torch.from_numpy(np.where(M[:, 1:], X[:, 1:], -100)),
                       torch.ones(self.B, dtype=torch.bool), torch.from_numpy(G[:, :-1].copy()))
                continue
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
            yield x, y, torch.from_numpy(S), torch.zeros(0, dtype=torch.int64)
