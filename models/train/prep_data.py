#!/usr/bin/env python3
"""Heed-tiny data preparation (runs on the development machine, stdlib only).

Steps:
  1. `apt-get download` the Debian documentation/text packages listed in PACKAGES
     (skipped when the .deb is already present in models/.data/debs).
  2. `dpkg -x` each package into models/.data/x/<package>.
  3. Extract plain text per source (reST, POD, asciidoc, HTML, dictd, fortune files),
     strip markup, normalise whitespace.
  4. Deduplicate: exact documents, then repeated paragraphs (boilerplate).
  5. Split documents into train / held-out (deterministic hash of the document id, ~1.5%).
  6. Write xz-compressed JSON lines to models/.corpus/corpus_{train,heldout}.jsonl.xz,
     models/.corpus/sources.json (package, version, byte counts) and the fixture text
     models/fixtures/heldout.txt (a few KB of held-out text).

Usage: python3 models/train/prep_data.py
       python3 models/train/prep_data.py --slim OUT_DIR    a copy without the dictionary (GCIDE), small
                                                           enough to carry to the GPU machine
"""
import gzip
import hashlib
import html
import html.parser
import json
import lzma
import os
import re
import subprocess
import sys
import unicodedata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]          # models/
DATA = ROOT / ".data"              # downloaded .debs and extracted trees
CORPUS = ROOT / ".corpus"          # cleaned, deduplicated, xz-compressed output (carried to the device)
DEBS = DATA / "debs"
X = DATA / "x"
FIXTURES = ROOT / "fixtures"

PACKAGES = [
    "python3.11-doc", "perl-doc", "dict-gcide", "fortunes", "fortunes-min",
    "linux-doc-6.1", "bash-doc", "git-doc", "postgresql-doc-15", "sqlite3-doc",
    "debian-reference-en", "debian-handbook", "rust-doc", "python-django-doc",
]

HELDOUT_PERMILLE = 15


# ----------------------------------------------------------------------------- fetch
def fetch():
    DEBS.mkdir(parents=True, exist_ok=True)
    versions = {}
    for p in PACKAGES:
        debs = list(DEBS.glob(f"{p}_*.deb"))
        if not debs:
            subprocess.run(["apt-get", "download", p], cwd=DEBS, check=True)
            debs = list(DEBS.glob(f"{p}_*.deb"))
        deb = debs[0]
        ver = subprocess.run(["dpkg-deb", "-f", str(deb), "Version"], capture_output=True,
                             text=True, check=True).stdout.strip()
        versions[p] = {"version": ver, "deb": deb.name, "deb_sha256": sha256_file(deb)}
        out = X / p
        if not out.exists():
            out.mkdir(parents=True)
            subprocess.run(["dpkg", "-x", str(deb), str(out)], check=True)
    return versions


def sha256_file(p):
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def read_text(path):
    raw = gzip.open(path).read() if str(path).endswith((".gz", ".dz")) else open(path, "rb").read()
    return raw.decode("utf-8", errors="replace")


# ----------------------------------------------------------------------------- cleaners
CTRL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffd]")


def normalise(t):
    t = unicodedata.normalize("NFC", t)
    t = t.replace("\r\n", "\n").replace("\r", "\n").expandtabs(4)
    t = CTRL.sub("", t)
    t = t.replace("\u00a0", " ").replace("\u200b", "")
    lines = [l.rstrip() for l in t.split("\n")]
    t = "\n".join(lines)
    t = re.sub(r"\n{3,}", "\n\n", t)
    return t.strip()


UNDERLINE = re.compile(r"^\s*([=\-~^\"'`#*+_.:])\1{2,}\s*$")
RST_ROLE = re.compile(r":[a-zA-Z0-9_:+-]+:`~?!?([^`]*?)`")
RST_TARGET = re.compile(r"^\s*\.\. _[^:]*:.*$")
RST_SKIP_DIRECTIVES = ("toctree", "index", "highlight", "code-block", "sectionauthor", "moduleauthor",
                       "image", "figure", "only", "raw", "kernel-doc", "include", "literalinclude",
                       "csv-table", "tabularcolumns", "cssclass", "rst-class", "testsetup",
                       "testcleanup", "doctest", "productionlist", "kernel-feat", "kernel-abi",
                       "SPDX-License-Identifier", "audit-event", "availability", "versionadded",
                       "versionchanged", "deprecated", "impl-detail", "opcode", "pdbcommand",
                       "cmdoption", "envvar", "program", "option", "c:namespace", "c:macro")


def clean_rst(t):
    out = []
    skip_indent = None
    for line in t.split("\n"):
        if skip_indent is not None:
            if line.strip() == "" or (len(line) - len(line.lstrip())) > skip_indent:
                if line.strip().startswith(":") or line.strip() == "":
                    continue
                # body of a directive we skip only its option lines; keep indented content
                if skip_indent == -1:
                    continue
            skip_indent = None
        if RST_TARGET.match(line) or UNDERLINE.match(line):
            continue
        m = re.match(r"^(\s*)\.\.\s+([A-Za-z0-9_:-]+)::\s*(.*)$", line)
        if m:
            name, arg = m.group(2), m.group(3)
            if name in ("toctree", "index", "only", "raw", "image", "figure", "kernel-doc",
                        "include", "literalinclude", "tabularcolumns", "csv-table"):
                skip_indent = -1 if name in ("toctree", "index", "raw", "kernel-doc") else len(m.group(1))
                continue
            skip_indent = len(m.group(1))
            if name in ("note", "warning", "seealso", "tip", "important", "hint", "attention", "caution",
                        "danger", "admonition", "todo"):
                out.append(m.group(1) + name.capitalize() + ":" + ((" " + arg) if arg else ""))
            elif arg and name not in RST_SKIP_DIRECTIVES:
                out.append(m.group(1) + arg)
            elif arg and name in ("versionadded", "versionchanged", "deprecated"):
                out.append(m.group(1) + {"versionadded": "New in version", "versionchanged": "Changed in version",
                                         "deprecated": "Deprecated since version"}[name] + " " + arg)
            continue
        if re.match(r"^\s*\.\.\s*(\|.*)?$", line) or re.match(r"^\s*\.\. \[", line):
            continue
        if re.match(r"^\s*\.\. ", line):  # comment
            skip_indent = len(line) - len(line.lstrip())
            continue
        line = RST_ROLE.sub(lambda mm: re.sub(r"\s*<[^>]*>$", "", mm.group(1)), line)
        line = re.sub(r"`([^`<]+?)\s*<[^>]+>`_+", r"\1", line)
        line = re.sub(r"``(.+?)``", r"\1", line)
        line = re.sub(r"`([^`]+)`_*", r"\1", line)
        line = re.sub(r"\|([A-Za-z0-9_-]+)\|", r"\1", line)
        line = re.sub(r"\*\*(.+?)\*\*", r"\1", line)
        if line.rstrip().endswith("::"):
            line = line.rstrip()[:-1] if not line.strip() == "::" else ""
        out.append(line)
    return "\n".join(out)


POD_CODE = re.compile(r"[A-Z]<(?:<+\s(.*?)\s>+|([^<>]*))>", re.S)


def clean_pod(t):
    out = []
    for line in t.split("\n"):
        if line.startswith("="):
            m = re.match(r"^=(\w+)\s*(.*)$", line)
            if not m:
                continue
            cmd, arg = m.group(1), m.group(2)
            if cmd.startswith("head") or cmd == "item":
                if arg and arg != "*":
                    out.append(arg)
            elif cmd in ("for", "begin") and "html" in arg:
                out.append("")
            continue
        out.append(line)
    t = "\n".join(out)

    def code(m):
        inner = m.group(1) if m.group(1) is not None else m.group(2)
        tag = m.group(0)[0]
        if tag == "X" or tag == "Z":
            return ""
        if tag == "E":
            return {"lt": "<", "gt": ">", "verbar": "|", "sol": "/"}.get(inner, html.unescape("&" + inner + ";"))
        if tag == "L":
            inner = inner.split("|", 1)[0] if "|" in inner else inner.replace('"', "").replace("/", " ")
        return inner
    for _ in range(4):
        t2 = POD_CODE.sub(code, t)
        if t2 == t:
            break
        t = t2
    return t


def clean_asciidoc(t):
    out = []
    for line in t.split("\n"):
        if UNDERLINE.match(line) or re.match(r"^(\+|//.*|:[a-z-]+:.*|\[\[.*\]\]|\[[a-z]+.*\])$", line.strip()):
            continue
        line = re.sub(r"(linkgit|link|gitlink):([\w./-]+)\[(\d*)\]", r"\2", line)
        line = re.sub(r"'(\S[^']*?)'", r"\1", line) if line.count("'") >= 2 and not line.startswith(" ") else line
        line = re.sub(r"`([^`]+)`", r"\1", line)
        out.append(line)
    return "\n".join(out)


class HTMLText(html.parser.HTMLParser):
    """HTML -> text. Keeps only the main content region when one is recognised."""
    BLOCK = {"p", "div", "br", "li", "ul", "ol", "dl", "dt", "dd", "pre", "table", "tr", "h1", "h2", "h3", "h4",
             "h5", "h6", "section", "article", "blockquote", "hr", "title", "main", "td", "th", "tbody", "thead"}
    SKIP = {"script", "style", "nav", "head", "noscript", "svg", "button", "form", "header", "footer", "aside"}
    SKIP_CLASS = re.compile(r"\b(sphinxsidebar|related|footer|navigation|nav-chapters|nav-wrapper|sidebar|"
                            r"headerlink|menu-bar|breadcrumbs|toc|navfooter|navheader|docnav|skip)\b")

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts = []
        self.stack = []          # (tag, skipping?)
        self.skip = 0
        self.pre = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("br", "hr", "img", "meta", "link", "input", "wbr", "col", "area", "base", "source"):
            if tag in ("br", "hr") and not self.skip:
                self.parts.append("\n")
            return
        a = dict(attrs)
        cls = (a.get("class") or "") + " " + (a.get("id") or "") + " " + (a.get("role") or "")
        s = tag in self.SKIP or bool(self.SKIP_CLASS.search(cls)) and tag in ("div", "ul", "span", "a", "p", "table")
        self.stack.append((tag, s))
        if s:
            self.skip += 1
        if tag == "pre":
            self.pre += 1
        if not self.skip and tag in self.BLOCK:
            self.parts.append("\n\n" if tag in ("p", "pre", "h1", "h2", "h3", "h4", "table", "section", "dl") else "\n")
            if tag == "li":
                self.parts.append("- ")

    def handle_endtag(self, tag):
        while self.stack:
            t, s = self.stack.pop()
            if s:
                self.skip -= 1
            if t == "pre":
                self.pre -= 1
            if t == tag:
                break
        if not self.skip and tag in self.BLOCK:
            self.parts.append("\n")

    def handle_data(self, data):
        if self.skip:
            return
        if self.pre:
            self.parts.append(data)
        else:
            self.parts.append(re.sub(r"\s+", " ", data))

    def text(self):
        t = "".join(self.parts)
        t = "\n".join(l.strip() if not l.startswith("    ") else l.rstrip() for l in t.split("\n"))
        return t


MAIN_RE = [re.compile(r"<main\b.*?</main>", re.S | re.I),
           re.compile(r'<div[^>]+role="main".*', re.S | re.I),
           re.compile(r'<div[^>]+class="(?:body|document|content|chapter|section|book|article)"[^>]*>.*', re.S | re.I),
           re.compile(r"<body\b.*", re.S | re.I)]


def clean_html(t):
    body = t
    for r in MAIN_RE:
        m = r.search(t)
        if m:
            body = m.group(0)
            break
    p = HTMLText()
    try:
        p.feed(body)
        p.close()
    except Exception:
        return ""
    return p.text()


# ----------------------------------------------------------------------------- sources
def iter_docs():
    """Yield (source_package, doc_id, text)."""
    def files(pkg, pattern, exclude=()):
        for f in sorted((X / pkg).rglob(pattern)):
            if f.is_file() and not any(e in str(f) for e in exclude):
                yield f

    for f in files("python3.11-doc", "*.rst.txt"):
        yield "python3.11-doc", str(f.relative_to(X)), clean_rst(read_text(f))
    for f in files("linux-doc-6.1", "*.rst.txt", exclude=("/translations/",)):
        yield "linux-doc-6.1", str(f.relative_to(X)), clean_rst(read_text(f))
    for pat in ("*.pod", "*.pod.gz"):
        for f in files("perl-doc", pat):
            yield "perl-doc", str(f.relative_to(X)), clean_pod(read_text(f))
    for f in files("git-doc", "*.txt"):
        yield "git-doc", str(f.relative_to(X)), clean_asciidoc(read_text(f))
    for pkg, excl in (("postgresql-doc-15", ()), ("sqlite3-doc", ()), ("debian-reference-en", ()),
                      ("bash-doc", ()), ("python-django-doc", ("/_modules/", "genindex", "py-modindex", "search.html")),
                      ("debian-handbook", ())):
        for f in files(pkg, "*.html", exclude=excl):
            if pkg == "debian-handbook" and "/en-US/" not in str(f):
                continue
            yield pkg, str(f.relative_to(X)), clean_html(read_text(f))
    rd = X / "rust-doc/usr/share/doc/rust-doc/html"
    for sub in ("book", "reference", "rust-by-example", "nomicon", "edition-guide", "rustc"):
        for f in sorted((rd / sub).rglob("*.html")):
            if f.name in ("print.html", "404.html", "toc.html") or "/searchindex" in str(f):
                continue
            yield "rust-doc", str(f.relative_to(X)), clean_html(read_text(f))
    # GCIDE: dictd database; entries are separated by a headword line at column 0.
    g = read_text(next((X / "dict-gcide").rglob("gcide.dict.dz")))
    start = g.find("\nA\n")
    g = g[start:] if start > 0 else g
    entries = re.split(r"\n(?=\S)", g)
    chunk, n = [], 0
    for e in entries:
        e = "\n".join(l.strip() for l in e.split("\n")
                      if not re.match(r"^\[(1913 Webster|WordNet 1\.5|PJC|Webster 1913 Suppl\.|Century Dict\.)[^\]]*\]$", l.strip()))
        if e.startswith("00-database") or "Begin file" in e or "End of file" in e or "* * * *" in e:
            continue
        chunk.append(e.strip())
        if len(chunk) >= 150:
            yield "dict-gcide", f"gcide#{n}", "\n\n".join(chunk)
            chunk, n = [], n + 1
    if chunk:
        yield "dict-gcide", f"gcide#{n}", "\n\n".join(chunk)
    for pkg in ("fortunes", "fortunes-min"):
        for f in sorted((X / pkg / "usr/share/games/fortunes").iterdir()):
            if f.suffix or not f.is_file() or f.is_symlink():
                continue
            items = [i.strip("\n") for i in re.split(r"^%\s*$", read_text(f), flags=re.M) if i.strip()]
            for k in range(0, len(items), 40):
                yield pkg, f"{f.relative_to(X)}#{k}", "\n\n".join(items[k:k + 40])


# ----------------------------------------------------------------------------- fixture
EDGE_CASES = (
    "Edge cases for the tokenizer check: it's, they'll, we've, I'm, DON'T, O'Neil's; "
    "numbers 7, 42, 1999, 3.14159, 0x1F, 123456789012; spaces:  two,   three,    four; "
    "tab\tafter; trailing spaces   \n"
    "Unicode: na\u00efve caf\u00e9, \u00fcber, se\u00f1or, \u00c5ngstr\u00f6m, \u2014 dash \u2026 ellipsis, "
    "\u201cquotes\u201d, \u00a9 2024, \u00b5s, \u03c0 \u2248 3.14, \u0416\u0443\u043a, \u6771\u4eac, \U0001F600.\n"
    "Code: def f(x):\n    return {'a': [1, 2], \"b\": x**2}  # comment\n\n\n"
    "if (a != b && c <= d) { printf(\"%d\\n\", a); }\n"
)


def write_fixture(held):
    """~8 KB of held-out text (a slice of one held-out document per source) plus tokenizer edge cases."""
    FIXTURES.mkdir(parents=True, exist_ok=True)
    pieces, by_src = [], {}
    for d in held:
        by_src.setdefault(d["src"], []).append(d)
    for src in sorted(by_src):
        t = by_src[src][0]["text"]
        cut = t[:900]
        cut = cut[:cut.rfind("\n")] if "\n" in cut[400:] else cut
        pieces.append(cut)
    fixture = "\n\n".join(pieces)[:8000] + "\n\n" + EDGE_CASES
    (FIXTURES / "heldout.txt").write_text(fixture, encoding="utf-8")


# ----------------------------------------------------------------------------- main
def main():
    versions = fetch()
    seen_docs, seen_par = set(), set()
    train, held = [], []
    stats = {}
    for src, did, text in iter_docs():
        text = normalise(text)
        if len(text) < 200:
            continue
        h = hashlib.sha1(text.encode()).digest()
        if h in seen_docs:
            continue
        seen_docs.add(h)
        # paragraph-level dedupe: drop paragraphs (>= 30 chars) seen before anywhere
        pars, kept = text.split("\n\n"), []
        for p in pars:
            key = re.sub(r"\s+", " ", p.strip()).lower()
            if len(key) >= 30:
                ph = hashlib.sha1(key.encode()).digest()[:10]
                if ph in seen_par:
                    continue
                seen_par.add(ph)
            kept.append(p)
        text = normalise("\n\n".join(kept))
        if len(text) < 200:
            continue
        is_held = int(hashlib.sha1(did.encode()).hexdigest(), 16) % 1000 < HELDOUT_PERMILLE
        (held if is_held else train).append({"src": src, "id": did, "text": text})
        s = stats.setdefault(src, {"docs": 0, "chars": 0, "held_docs": 0, "held_chars": 0})
        k = "held_" if is_held else ""
        s[k + "docs"] += 1
        s[k + "chars"] += len(text)
    CORPUS.mkdir(parents=True, exist_ok=True)
    for name, docs in (("train", train), ("heldout", held)):
        with lzma.open(CORPUS / f"corpus_{name}.jsonl.xz", "wt", encoding="utf-8", preset=6) as f:
            for d in docs:
                f.write(json.dumps(d, ensure_ascii=False) + "\n")
    for src, s in stats.items():
        s.update(versions.get(src, {}))
    (CORPUS / "sources.json").write_text(json.dumps(stats, indent=1))
    write_fixture(held)
    total = sum(s["chars"] for s in stats.values())
    print(json.dumps({k: (v["docs"], v["chars"], v["held_docs"], v["held_chars"]) for k, v in stats.items()}, indent=0))
    print(f"train docs {len(train)} heldout docs {len(held)} train chars {total}")
    for p in (CORPUS / "corpus_train.jsonl.xz", CORPUS / "corpus_heldout.jsonl.xz"):
        print(p.name, p.stat().st_size)


def slim(out_dir):
    """Copy of the corpus small enough to travel to the GPU machine (64 MiB with the repository): the
    training documents without the dictionary (GCIDE); the held-out file unchanged."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with lzma.open(out / "corpus_train.jsonl.xz", "wt", encoding="utf-8", preset=6) as f:
        for line in lzma.open(CORPUS / "corpus_train.jsonl.xz", "rt", encoding="utf-8"):
            if not line.startswith('{"src": "dict-gcide"'):
                f.write(line)
    (out / "corpus_heldout.jsonl.xz").write_bytes((CORPUS / "corpus_heldout.jsonl.xz").read_bytes())


if __name__ == "__main__":
    if sys.argv[1:2] == ["--slim"]:
        slim(sys.argv[2])
    elif sys.argv[1:] == ["--fixture-only"]:
        write_fixture([json.loads(l) for l in lzma.open(CORPUS / "corpus_heldout.jsonl.xz", "rt", encoding="utf-8")])
    else:
        sys.exit(main())
