#!/usr/bin/env python3
"""Mechanical check that no training template of templates.py can produce a sentence or question of the
held-out evaluation set (models/heldout/*/needles.json, the eval-bench's), run once after training:

  python3 models/train/check_overlap.py models/heldout/dev/needles.json models/heldout/test/needles.json

Each TRAIN_* template becomes a regular expression (each placeholder matches any text); every evaluation
sentence, question and distractor (slots filled with "X") is tested against all of them. Prints the matches
and exits 1 if there are any. Nothing here reads the evaluation text for any other purpose.
"""
import json
import re
import sys

import templates as TPL


def pattern(template):
    parts = re.split(r"\{[A-Z]\}", template)
    return re.compile(".+".join(re.escape(p) for p in parts), re.IGNORECASE | re.DOTALL)


def main():
    templates = TPL.TRAIN_FACTS + TPL.TRAIN_MENTIONS + TPL.TRAIN_QUESTIONS + TPL.TRAIN_CLOZE
    compiled = [(t, pattern(t)) for t in templates]
    texts = []
    for path in sys.argv[1:]:
        for item in json.load(open(path, encoding="utf-8")):
            for key in ("sentences", "distractors"):
                texts += item.get(key, [])
            texts.append(item["question"])
    texts = [re.sub(r"\{[a-z]\}", "X", t) for t in texts]
    hits = [(t, s) for s in texts for t, p in compiled if p.fullmatch(s)]
    for t, s in hits:
        print(f"template {t!r} matches evaluation text {s!r}")
    print(f"{len(templates)} training templates, {len(texts)} evaluation texts, {len(hits)} matches")
    return 1 if hits else 0


if __name__ == "__main__":
    sys.exit(main())
