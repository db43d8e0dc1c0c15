"""Heed-small (and heed-tiny): a minimal Llama (RMSNorm, SwiGLU, GQA, RoPE) in PyTorch.

RoPE uses llama.cpp's LLAMA_ROPE_TYPE_NORM convention: adjacent pairs (x[2i], x[2i+1]) are rotated by
pos * base^(-2i/head_dim). With that convention the q/k weights go into GGUF unpermuted.
GQA: query head h reads kv head h // (n_head // n_kv_head) (repeat_interleave), as ggml broadcasts.
"""
import math
from dataclasses import dataclass, asdict

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class Config:
    """Defaults: heed-small. heed-tiny was d_model 384, 6 heads, ffn_dim 1024, untied embeddings."""
    vocab_size: int = 12288
    d_model: int = 512
    n_layer: int = 8
    n_head: int = 8
    n_kv_head: int = 2
    head_dim: int = 64
    ffn_dim: int = 1408
    ctx: int = 2048
    rope_base: float = 10000.0
    norm_eps: float = 1e-5
    tie_embeddings: bool = True

    def to_dict(self):
        return asdict(self)


def rms_norm(x, w, eps):
    if hasattr(F, "rms_norm"):
        return F.rms_norm(x, (x.shape[-1],), w, eps)
    xf = x.float()
    return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)).type_as(x) * w


class RMSNorm(nn.Module):
    def __init__(self, d, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):
        return rms_norm(x, self.weight, self.eps)


def rope_tables(cfg, T, device):
    inv = cfg.rope_base ** (-torch.arange(0, cfg.head_dim, 2, dtype=torch.float64, device=device) / cfg.head_dim)
    ang = torch.arange(T, dtype=torch.float64, device=device)[:, None] * inv[None, :]
    return ang.cos().float(), ang.sin().float()          # (T, hd/2)


def apply_rope(x, cos, sin):
    # x: (B, H, T, hd); adjacent pairs
    B, H, T, D = x.shape
    xf = x.float().view(B, H, T, D // 2, 2)
    x0, x1 = xf[..., 0], xf[..., 1]
    c, s = cos[:T], sin[:T]
    y = torch.stack((x0 * c - x1 * s, x0 * s + x1 * c), dim=-1)
    return y.view(B, H, T, D).type_as(x)


_HAS_SDPA = hasattr(F, "scaled_dot_product_attention")


class Attention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        d, hd = cfg.d_model, cfg.head_dim
        self.wq = nn.Linear(d, cfg.n_head * hd, bias=False)
        self.wk = nn.Linear(d, cfg.n_kv_head * hd, bias=False)
        self.wv = nn.Linear(d, cfg.n_kv_head * hd, bias=False)
        self.wo = nn.Linear(cfg.n_head * hd, d, bias=False)

    def forward(self, x, cos, sin, mask=None):
        B, T, _ = x.shape
        c = self.cfg
        q = self.wq(x).view(B, T, c.n_head, c.head_dim).transpose(1, 2)
        k = self.wk(x).view(B, T, c.n_kv_head, c.head_dim).transpose(1, 2)
        v = self.wv(x).view(B, T, c.n_kv_head, c.head_dim).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        r = c.n_head // c.n_kv_head
        k = k.repeat_interleave(r, dim=1)       # q head h reads kv head h // r (as ggml broadcasts)
        v = v.repeat_interleave(r, dim=1)
        if _HAS_SDPA:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=mask is None, attn_mask=mask)
        else:
            att = (q.float() @ k.float().transpose(-1, -2)) / math.sqrt(c.head_dim)
            if mask is None:
                mask = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
            att = att.masked_fill(~mask, float("-inf")).softmax(-1)
            y = (att @ v.float()).type_as(x)
        return self.wo(y.transpose(1, 2).reshape(B, T, c.n_head * c.head_dim))


class MLP(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.w_gate = nn.Linear(cfg.d_model, cfg.ffn_dim, bias=False)
        self.w_up = nn.Linear(cfg.d_model, cfg.ffn_dim, bias=False)
        self.w_down = nn.Linear(cfg.ffn_dim, cfg.d_model, bias=False)

    def forward(self, x):
        return self.w_down(F.silu(self.w_gate(x)) * self.w_up(x))


class Block(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.attn_norm = RMSNorm(cfg.d_model, cfg.norm_eps)
        self.attn = Attention(cfg)
        self.ffn_norm = RMSNorm(cfg.d_model, cfg.norm_eps)
        self.mlp = MLP(cfg)

    def forward(self, x, cos, sin, mask=None):
        x = x + self.attn(self.attn_norm(x), cos, sin, mask)
        return x + self.mlp(self.ffn_norm(x))


class Llama(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.norm = RMSNorm(cfg.d_model, cfg.norm_eps)
        self.lm_head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        if cfg.tie_embeddings:
            self.lm_head.weight = self.tok_emb.weight
        self.apply(self._init)
        for n, p in self.named_parameters():
            if n.endswith("wo.weight") or n.endswith("w_down.weight"):
                nn.init.normal_(p, std=0.02 / math.sqrt(2 * cfg.n_layer))
        cos, sin = rope_tables(cfg, cfg.ctx, "cpu")
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)

    @staticmethod
    def _init(m):
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)

    def forward(self, idx, mask=None):
        """mask: None for causal attention, or a boolean (B, 1, T, T) mask (True = may attend)."""
        x = self.tok_emb(idx)
        for b in self.blocks:
            x = b(x, self.rope_cos, self.rope_sin, mask)
        return self.lm_head(self.norm(x))

    def n_params(self):
        return sum(p.numel() for p in self.parameters())
