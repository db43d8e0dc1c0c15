#!/usr/bin/env python3
"""Train the Heed-tiny byte-level BPE tokenizer (HF `tokenizers`) on the training text.

GPT-2 byte-level pre-tokenizer (regex split + byte->unicode map), no normaliser, no prefix space, so that
llama.cpp's tokenizer.ggml.model="gpt2" / tokenizer.ggml.pre="gpt-2" reproduces it exactly.
Special tokens: <|bos|>=0, <|eos|>=1, <|pad|>=2.

Usage: python3 train_tokenizer.py CORPUS_TRAIN.jsonl.xz OUT_TOKENIZER.json [--vocab 12288]
       (also reads the Python standard library .py files of the running interpreter, see data.py)
"""
import argparse
import json
import lzma
import random
import time

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

import data as D


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("corpus")
    ap.add_argument("out")
    ap.add_argument("--vocab", type=int, default=12288)
    a = ap.parse_args()
    t0 = time.time()
    docs = [json.loads(l)["text"] for l in lzma.open(a.corpus, "rt", encoding="utf-8")]
    code, _ = D.stdlib_files()
    random.Random(0).shuffle(code)
    texts = docs + [open(p, encoding="utf-8", errors="replace").read() for p in code[: len(code) // 2]]
    print(f"tokenizer corpus: {len(texts)} docs, {sum(map(len, texts)) / 1e6:.1f} M chars", flush=True)

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=a.vocab, min_frequency=2, special_tokens=["<|bos|>", "<|eos|>", "<|pad|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer, length=len(texts))
    tok.save(a.out)
    assert tok.get_vocab_size() == a.vocab, tok.get_vocab_size()
    assert [tok.token_to_id(s) for s in ("<|bos|>", "<|eos|>", "<|pad|>")] == [0, 1, 2]
    sample = docs[0][:2000]
    n = len(tok.encode(sample).ids)
    print(f"tokenizer: vocab {tok.get_vocab_size()}, {len(sample) / n:.2f} chars/token on a sample, "
          f"{time.time() - t0:.1f}s", flush=True)


if __name__ == "__main__":
    main()
