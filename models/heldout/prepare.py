#!/usr/bin/env python3
"""Builds Heed's held-out evaluation text from two Debian 12 documentation packages.

    python3 models/heldout/prepare.py [--debs DIR]

Without --debs it downloads the packages with `apt-get download` (run `apt-get update` first).
It checks each package against the sha256 recorded below, unpacks it with `dpkg -x`, keeps the
prose of the HTML pages (paragraphs, list items, notes; no code blocks, menus, directive
tables or headings) and writes, for each split, docs.jsonl.gz: one page per line,
{"id": ..., "package": ..., "title": ..., "paragraphs": [...]}. A page goes to dev/ when the
first byte of sha256(id) is below 77 (about 30%), otherwise to test/. Then it builds each
split's re-ranking set (rerank.jsonl) from the hand-written questions in
<split>/rerank-questions.json, as described in README.md. Standard library only; the output
is the same on every run.
"""

import argparse
import gzip
import hashlib
import html.parser
import json
import math
import re
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent

PACKAGES = {
    "apache2-doc": ("2.4.71-1~deb12u1", "a7b3d1131c1c63dbf9999b28e75f9a133d30f70492b419936bd51759ac77a01f"),
    "golang-1.19-doc": ("1.19.8-2", "eb1b1214aa50688486c7e041714be5cd0f986bdfd78dfc690d6ba3ade5e11952"),
}

# The English manual only (the other languages repeat it), and the Go pages except the old
# Go 1.17 spec, which is a near copy of the current one and would leak across the split.
PAGE_ROOTS = {
    "apache2-doc": "usr/share/doc/apache2-doc/manual/en",
    "golang-1.19-doc": "usr/share/doc/golang-1.19-doc/html",
}
SKIPPED_PAGES = {"golang-1.19-doc/go1.17_spec.html"}

DEV_CUTOFF = 77  # first hash byte below this: dev (77/256 = 30%)
MIN_WORDS = 8

# Elements whose text is not prose: code, navigation, directive summary tables, headings.
SKIP_TAGS = {"pre", "script", "style", "h1", "h2", "h3", "h4", "h5", "h6", "table", "button", "svg"}
SKIP_CLASSES = {"toplang", "bottomlang", "example", "top", "up", "menu", "apache"}
SKIP_IDS = {"quickview", "footer", "page-header", "path", "comments_section"}
BLOCK_TAGS = {"p", "li", "dd", "dt", "div", "td", "th", "blockquote", "ul", "ol", "dl", "br"}
VOID_TAGS = {"br", "img", "meta", "link", "hr", "input", "area", "col", "source", "wbr", "embed", "param"}


class ProseExtractor(html.parser.HTMLParser):
    """Collects the text of block elements outside skipped subtrees, one paragraph per block."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[bool] = []  # per open element: does it start a skipped subtree?
        self.skip_depth = 0
        self.buffer: list[str] = []
        self.paragraphs: list[str] = []
        self.title = ""
        self.in_title = False

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "title":
            self.in_title = True
        if tag in BLOCK_TAGS:
            self.flush()
        if tag in VOID_TAGS:
            return
        classes = set((attributes.get("class") or "").split())
        skipped = tag in SKIP_TAGS or bool(classes & SKIP_CLASSES) or attributes.get("id") in SKIP_IDS
        self.stack.append(skipped)
        self.skip_depth += skipped

    def handle_endtag(self, tag):
        if tag == "title":
            self.in_title = False
        if tag in VOID_TAGS or not self.stack:
            return
        if tag in BLOCK_TAGS or tag in SKIP_TAGS:
            self.flush()
        self.skip_depth -= self.stack.pop()

    def handle_data(self, data):
        if self.in_title:
            self.title += data
        elif self.skip_depth == 0:
            self.buffer.append(data)

    def flush(self):
        text = normalise("".join(self.buffer))
        self.buffer.clear()
        if len(text.split()) >= MIN_WORDS:
            self.paragraphs.append(text)


def normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text.replace("\u00a0", " ")).strip()


def download(directory: Path) -> None:
    names = [f"{name}={version}" for name, (version, _) in PACKAGES.items()]
    subprocess.run(["apt-get", "download", *names], cwd=directory, check=True)


def unpack(debs: Path, target: Path) -> None:
    for name, (version, sha256) in PACKAGES.items():
        deb = debs / f"{name}_{version.replace(':', '%3a')}_all.deb"
        digest = hashlib.sha256(deb.read_bytes()).hexdigest()
        if digest != sha256:
            sys.exit(f"{deb.name}: sha256 {digest}, expected {sha256}")
        (target / name).mkdir(parents=True)
        subprocess.run(["dpkg", "-x", str(deb), str(target / name)], check=True)


def pages(unpacked: Path):
    for package, root in PAGE_ROOTS.items():
        base = unpacked / package / root
        for path in sorted(base.rglob("*.html")):
            page_id = f"{package}/{path.relative_to(base).as_posix()}"
            if page_id in SKIPPED_PAGES:
                continue
            extractor = ProseExtractor()
            extractor.feed(path.read_text(encoding="utf-8", errors="replace"))
            extractor.flush()
            if extractor.paragraphs:
                title = normalise(extractor.title) or page_id
                yield {"id": page_id, "package": package, "title": title, "paragraphs": extractor.paragraphs}


def split_of(page_id: str) -> str:
    return "dev" if hashlib.sha256(page_id.encode()).digest()[0] < DEV_CUTOFF else "test"


def write_docs(documents, split: str) -> None:
    lines = [json.dumps(d, ensure_ascii=False) for d in documents if split_of(d["id"]) == split]
    # mtime=0 keeps the file identical across runs.
    with open(HERE / split / "docs.jsonl.gz", "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as out:
        out.write(("\n".join(lines) + "\n").encode())


# --- the re-ranking set -------------------------------------------------------------------

PASSAGES_PER_QUERY = 12
PASSAGE_WORDS = (15, 90)
WORD = re.compile(r"[a-z0-9]+")
STOP = set("a an the of to in on for and or is are be by with as at it its this that what which how "
           "do does can i you my if from not no when where why who into than then there their".split())


def terms(text: str) -> list[str]:
    return [w for w in WORD.findall(text.lower()) if w not in STOP]


class Bm25:
    """Okapi BM25 (k1 1.2, b 0.75) over a list of passages."""

    def __init__(self, passages: list[str]) -> None:
        self.documents = [Counter(terms(p)) for p in passages]
        self.lengths = [sum(d.values()) for d in self.documents]
        self.average = sum(self.lengths) / len(self.lengths)
        frequency = Counter(t for d in self.documents for t in d)
        n = len(passages)
        self.idf = {t: math.log(1 + (n - f + 0.5) / (f + 0.5)) for t, f in frequency.items()}

    def scores(self, query: str) -> list[float]:
        query_terms = terms(query)
        result = []
        for document, length in zip(self.documents, self.lengths):
            norm = 1.2 * (0.25 + 0.75 * length / self.average)
            result.append(sum(self.idf.get(t, 0) * document[t] * 2.2 / (document[t] + norm) for t in query_terms if t in document))
        return result


def build_rerank_set(documents, split: str) -> None:
    questions_file = HERE / split / "rerank-questions.json"
    if not questions_file.exists():
        return
    # Candidate passages: paragraphs of a readable length, each text once (pages repeat some).
    pool, seen = [], set()
    for d in documents:
        for i, p in enumerate(d["paragraphs"]):
            if split_of(d["id"]) == split and PASSAGE_WORDS[0] <= len(p.split()) <= PASSAGE_WORDS[1] and p not in seen:
                seen.add(p)
                pool.append((d["id"], i, p))
    index = Bm25([p for _, _, p in pool])
    cases = []
    for q in json.loads(questions_file.read_text()):
        answers = [k for k, (page, _, text) in enumerate(pool) if page == q["page"] and q["answer"] in text]
        if len(answers) != 1:
            sys.exit(f"{split}: question {q['question']!r}: {len(answers)} passages of {q['page']} contain {q['answer']!r}")
        answer = answers[0]
        # Hard negatives: the passages BM25 ranks highest for the question, except the answer,
        # its page neighbours and any passage holding one of the question's "excludes" phrases
        # (another passage that would answer it too).
        excluded = [s.lower() for s in q.get("excludes", [])] + [q["answer"].lower()]
        scores = index.scores(q["question"])
        negatives = []
        for k in sorted(range(len(pool)), key=lambda k: -scores[k]):
            page, paragraph, text = pool[k]
            if k == answer or (page == q["page"] and abs(paragraph - pool[answer][1]) <= 1):
                continue
            if any(s in text.lower() for s in excluded):
                continue
            negatives.append(k)
            if len(negatives) == PASSAGES_PER_QUERY - 1:
                break
        # The answer's slot is fixed per question (from its hash), so the set has no position bias.
        slot = hashlib.sha256(q["question"].encode()).digest()[0] % PASSAGES_PER_QUERY
        passages = [pool[k][2] for k in negatives]
        passages.insert(slot, pool[answer][2])
        cases.append({"query": q["question"], "passages": passages, "relevant": slot, "page": q["page"]})
    with open(HERE / split / "rerank.jsonl", "w") as out:
        for case in cases:
            out.write(json.dumps(case, ensure_ascii=False) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--debs", type=Path, help="folder holding the two .deb files (default: download them)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temp:
        debs = args.debs or Path(temp)
        if args.debs is None:
            download(debs)
        unpack(debs, Path(temp) / "unpacked")
        documents = list(pages(Path(temp) / "unpacked"))
    for split in ("dev", "test"):
        (HERE / split).mkdir(exist_ok=True)
        write_docs(documents, split)
        build_rerank_set(documents, split)
        chosen = [d for d in documents if split_of(d["id"]) == split]
        words = sum(len(p.split()) for d in chosen for p in d["paragraphs"])
        print(f"{split}: {len(chosen)} pages, {words:,} words")


if __name__ == "__main__":
    main()
