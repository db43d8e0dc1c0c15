#!/usr/bin/env python3
"""Synonyms for the paraphrased questions of the training episodes, from WordNet 3.0 (Debian 12 package
wordnet-base; WordNet licence, Princeton University). Runs on the development machine, stdlib only.

For each lower-case word: the other words of its two most frequent senses (synsets), and the words of the
first sense's first hypernym (a more general name: "server" -> "computer"), as a paraphrase can be.
Writes OUT_DIR/synonyms.json.xz ({"synonyms": {word: [synonym, ...]}, "irregular": {inflected form: base}}),
which data.py reads beside the corpus.

Usage: python3 models/train/prep_synonyms.py [OUT_DIR]      (default models/.corpus)
"""
import glob
import json
import lzma
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEBS = ROOT / ".data" / "debs"
X = ROOT / ".data" / "x" / "wordnet-base"
POS = {"noun": "n", "verb": "v", "adj": "a", "adv": "r"}


def unpack():
    DEBS.mkdir(parents=True, exist_ok=True)
    debs = glob.glob(str(DEBS / "wordnet-base_*.deb"))
    if not debs:
        subprocess.run(["apt-get", "download", "wordnet-base"], cwd=DEBS, check=True)
        debs = glob.glob(str(DEBS / "wordnet-base_*.deb"))
    if not (X / "usr/share/wordnet").is_dir():
        subprocess.run(["dpkg", "-x", debs[0], str(X)], check=True)
    version = subprocess.run(["dpkg-deb", "-f", debs[0], "Version"], capture_output=True, text=True,
                             check=True).stdout.strip()
    return X / "usr/share/wordnet", version


def plain(lemma):
    """A WordNet lemma as text, or None for proper nouns, numbers and marked forms."""
    w = lemma.split("(")[0].replace("_", " ")
    return w if w.islower() and w.replace(" ", "").replace("-", "").isalpha() else None


def read(wn):
    synonyms = {}
    for pos in POS:
        synsets, hyper = {}, {}
        for line in open(wn / f"data.{pos}", encoding="latin-1"):
            if line.startswith("  "):
                continue                                      # licence header
            f = line.split(" | ")[0].split()
            off, n = f[0], int(f[3], 16)
            synsets[off] = [f[4 + 2 * i] for i in range(n)]
            p = 4 + 2 * n
            hyper[off] = next((f[p + 1 + 4 * i + 1] for i in range(int(f[p])) if f[p + 1 + 4 * i] == "@"), None)
        for line in open(wn / f"index.{pos}", encoding="latin-1"):
            if line.startswith("  "):
                continue
            f = line.split()
            word = plain(f[0])
            if not word or " " in word:
                continue
            n_ptr = int(f[3])
            offsets = f[6 + n_ptr:]                           # most frequent sense first
            out = synonyms.setdefault(word, [])
            candidates = [w for off in offsets[:2] for w in synsets[off]]
            if offsets and hyper.get(offsets[0]):
                candidates += synsets[hyper[offsets[0]]][:2]
            for lemma in candidates:
                s = plain(lemma)
                if s and s != word and s not in out:
                    out.append(s)
    irregular = {}                                            # "kept" -> "keep", "mice" -> "mouse"
    for pos in POS:
        for line in open(wn / f"{pos}.exc", encoding="latin-1"):
            f = line.split()
            if len(f) >= 2 and plain(f[0]) and plain(f[1]):
                irregular.setdefault(f[0], f[1])
    return {w: s for w, s in synonyms.items() if s}, irregular


def main():
    out = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / ".corpus")
    wn, version = unpack()
    synonyms, irregular = read(wn)
    out.mkdir(parents=True, exist_ok=True)
    with lzma.open(out / "synonyms.json.xz", "wt", encoding="utf-8") as f:
        json.dump({"source": f"wordnet-base {version}", "synonyms": synonyms, "irregular": irregular}, f, separators=(",", ":"))
    print(f"wordnet-base {version}: {len(synonyms)} words with synonyms -> {out / 'synonyms.json.xz'} "
          f"({os.path.getsize(out / 'synonyms.json.xz')} bytes)")
    for w in ("server", "keeps", "oldest", "boat", "port", "sells", "named", "database"):
        print(f"  {w}: {synonyms.get(w, [])[:8]}")


if __name__ == "__main__":
    main()
