#!/usr/bin/env python3
"""Write a heed-small (or heed-tiny) checkpoint + HF tokenizer.json as GGUF (arch "llama") with the gguf package of the
pinned llama.cpp source (gguf-py). Usage:

  PYTHONPATH=<llama.cpp>/gguf-py python3 convert.py CKPT.pt TOKENIZER.json OUT.gguf [--type f16|q8_0]

Tensor names follow llama.cpp's LLM_ARCH_LLAMA table (gguf-py/gguf/constants.py); PyTorch Linear weights
(out, in) are written unchanged (GGUF stores the reversed shape ne = (in, out), as llama.cpp expects).
No q/k permutation is needed because the PyTorch model already uses the adjacent-pair RoPE (ROPE_TYPE_NORM).
"""
import argparse
import json
import sys

import numpy as np
import torch

import gguf

CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'user' %}Question: {{ m['content'] }}\n"
    "{% elif m['role'] == 'system' %}{{ m['content'] }}\n{% else %}Answer: {{ m['content'] }}{{ eos_token }}\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}Answer:{% endif %}"
)


def load_tokenizer(path):
    tj = json.load(open(path, encoding="utf-8"))
    vocab = tj["model"]["vocab"]
    n = max(vocab.values()) + 1
    for a in tj.get("added_tokens", []):
        n = max(n, a["id"] + 1)
    tokens = [None] * n
    for t, i in vocab.items():
        tokens[i] = t
    types = [gguf.TokenType.NORMAL] * n
    special = {}
    for a in tj.get("added_tokens", []):
        tokens[a["id"]] = a["content"]
        types[a["id"]] = gguf.TokenType.CONTROL if a.get("special") else gguf.TokenType.USER_DEFINED
        special[a["content"]] = a["id"]
    assert all(t is not None for t in tokens), "holes in vocab"
    merges = [m if isinstance(m, str) else " ".join(m) for m in tj["model"]["merges"]]
    return tokens, types, merges, special


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("ckpt")
    ap.add_argument("tokenizer")
    ap.add_argument("out")
    ap.add_argument("--type", default="f16", choices=["f16", "q8_0"])
    ap.add_argument("--name", default="heed-small")
    a = ap.parse_args()

    ck = torch.load(a.ckpt, map_location="cpu", weights_only=False)
    cfg = ck["config"]
    sd = {k.replace("_orig_mod.", ""): v.float().numpy() for k, v in ck["model"].items()}
    tokens, types, merges, special = load_tokenizer(a.tokenizer)
    assert len(tokens) == cfg["vocab_size"], (len(tokens), cfg["vocab_size"])

    w = gguf.GGUFWriter(a.out, "llama")
    w.add_name(a.name)
    w.add_description(f"{a.name}: small Llama trained on Debian documentation text + synthetic retrieval tasks")
    w.add_license("see models/README.md (trained on GPL/BSD/PSF/... documentation; weights provided as-is)")
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16 if a.type == "f16" else gguf.LlamaFileType.MOSTLY_Q8_0)
    w.add_vocab_size(cfg["vocab_size"])
    w.add_context_length(cfg["ctx"])
    w.add_embedding_length(cfg["d_model"])
    w.add_block_count(cfg["n_layer"])
    w.add_feed_forward_length(cfg["ffn_dim"])
    w.add_head_count(cfg["n_head"])
    w.add_head_count_kv(cfg["n_kv_head"])
    w.add_rope_dimension_count(cfg["head_dim"])
    w.add_rope_freq_base(float(cfg["rope_base"]))
    w.add_layer_norm_rms_eps(float(cfg["norm_eps"]))
    if cfg["head_dim"] * cfg["n_head"] != cfg["d_model"]:
        w.add_key_length(cfg["head_dim"])
        w.add_value_length(cfg["head_dim"])

    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("gpt-2")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(special["<|bos|>"])
    w.add_eos_token_id(special["<|eos|>"])
    w.add_pad_token_id(special["<|pad|>"])
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    w.add_chat_template(CHAT_TEMPLATE)

    def put(name, arr):
        if arr.ndim == 1:
            w.add_tensor(name, arr.astype(np.float32))
        elif a.type == "f16":
            w.add_tensor(name, arr.astype(np.float16))
        else:
            q = gguf.quants.quantize(arr.astype(np.float32), gguf.GGMLQuantizationType.Q8_0)
            w.add_tensor(name, q, raw_dtype=gguf.GGMLQuantizationType.Q8_0)

    put("token_embd.weight", sd["tok_emb.weight"])
    for i in range(cfg["n_layer"]):
        p = f"blocks.{i}."
        put(f"blk.{i}.attn_norm.weight", sd[p + "attn_norm.weight"])
        put(f"blk.{i}.attn_q.weight", sd[p + "attn.wq.weight"])
        put(f"blk.{i}.attn_k.weight", sd[p + "attn.wk.weight"])
        put(f"blk.{i}.attn_v.weight", sd[p + "attn.wv.weight"])
        put(f"blk.{i}.attn_output.weight", sd[p + "attn.wo.weight"])
        put(f"blk.{i}.ffn_norm.weight", sd[p + "ffn_norm.weight"])
        put(f"blk.{i}.ffn_gate.weight", sd[p + "mlp.w_gate.weight"])
        put(f"blk.{i}.ffn_up.weight", sd[p + "mlp.w_up.weight"])
        put(f"blk.{i}.ffn_down.weight", sd[p + "mlp.w_down.weight"])
    put("output_norm.weight", sd["norm.weight"])
    if not cfg.get("tie_embeddings"):
        put("output.weight", sd["lm_head.weight"])

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print(f"wrote {a.out}: {len(tokens)} tokens, {len(merges)} merges, type {a.type}")


if __name__ == "__main__":
    sys.exit(main())
