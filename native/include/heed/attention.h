/* heed/attention.h - fused attention kernels: aggregation, flash attention, block-sparse.
 *
 * Every function validates its arguments first (null descriptors, ranks, shapes, strides,
 * dtypes, sizes) and answers HEED_ERR_INVALID_ARGUMENT with a message naming the argument.
 * Tensors in host memory run on the CPU (threaded, AVX2 where the CPU has it); tensors in CUDA
 * device memory run on that device (a CPU-only build answers HEED_ERR_NO_CUDA). All tensors of
 * one call must live in the same memory. Accumulation is fp32 everywhere.
 *
 * scale: the factor applied to q.k before the softmax. Pass 0 for 1/sqrt(d); otherwise it must
 * be finite and positive.
 *
 * GQA: H query heads share Hkv key/value heads; H must be a multiple of Hkv and query head h
 * reads kv head h / (H / Hkv).
 *
 * CUDA: calls are queued on the default stream and return without waiting (a later copy or
 * heed_cuda_synchronize waits). Valid input the CUDA path answers with HEED_ERR_UNSUPPORTED:
 * flash and block-sparse attention need f16/bf16, d = 64 or 128, a contiguous last dimension and
 * 16-byte aligned rows (base pointer and every outer stride a multiple of 8 elements); attention
 * aggregation takes any layout and d up to 256 (tensor cores for f16/bf16 with d 64/128 and
 * aligned rows, fp32 CUDA cores otherwise); the mask estimate takes up to 4096 key blocks. */
#ifndef HEED_ATTENTION_H
#define HEED_ATTENTION_H

#include "status.h"
#include "tensor.h"

HEED_EXTERN_C_BEGIN

/* Attention aggregation: how much attention chosen query rows pay to each key.
 *
 *   q      [n_q, H, d]    f32/f16/bf16   query rows (post-RoPE)
 *   q_pos  [n_q]          i32            position of each query row
 *   k      [n_k, Hkv, d]  same dtype as q
 *   k_pos  [n_k]          i32            position of each key
 *   causal nonzero: row i sees key j only where k_pos[j] <= q_pos[i]; zero: every key
 *   out    [n_k]          f32            out[j] = sum_h sum_i softmax_i,h(j)
 *   out_per_head [H, n_k] f32 or NULL    the same before the sum over heads
 *
 * softmax_i,h(j) = exp(s_ij - m) / sum over visible j' of exp(s_ij' - m), s_ij = scale q_i,h . k_j,g
 * over the keys row i sees (g = h / (H/Hkv)). Computed with a two-pass online softmax (row max
 * and sum, then the probabilities); no n_q x n_k buffer exists. A row that sees no key adds
 * nothing. Every element of out (and out_per_head) is written. */
HEED_API heed_status heed_attention_aggregate(const heed_tensor *q, const heed_tensor *q_pos, const heed_tensor *k,
                                              const heed_tensor *k_pos, float scale, int32_t causal,
                                              const heed_tensor *out, const heed_tensor *out_per_head);

/* Flash attention forward: O = softmax(scale Q K^T) V per (batch, head), never forming Q K^T.
 *
 *   q    [B, H, Nq, d]     f32 (CPU only)/f16/bf16
 *   k, v [B, Hkv, Nk, d]   same dtype as q
 *   causal nonzero: query i sees key j only where j <= i. Aligned top-left, as PyTorch's
 *          scaled_dot_product_attention(is_causal=True): with Nq != Nk row i still sees keys
 *          0..i (not the bottom-right alignment of a decode step). Every row sees key 0.
 *   o    [B, H, Nq, d]     same dtype as q
 *   lse  [B, H, Nq] f32 or NULL: the natural-log logsumexp of each row's scaled scores.
 *
 * d: any on the CPU; 64 or 128 on CUDA. */
HEED_API heed_status heed_flash_attention_forward(const heed_tensor *q, const heed_tensor *k, const heed_tensor *v,
                                                  float scale, int32_t causal, const heed_tensor *o,
                                                  const heed_tensor *lse);

/* Block-sparse attention forward: flash attention restricted to the blocks a mask keeps.
 *
 *   q, k, v, o, lse, scale, causal   as heed_flash_attention_forward
 *   mask  [B, H, ceil(Nq/block), ceil(Nk/block)] u8: nonzero keeps the (query block, key block)
 *   block 64 or 128 (the same for queries and keys)
 *
 * Query row i sees key j where mask[b,h,i/block,j/block] != 0 (and j <= i when causal). A row
 * that sees no key gets O = 0 and lse = -infinity. */
HEED_API heed_status heed_block_sparse_attention_forward(const heed_tensor *q, const heed_tensor *k,
                                                         const heed_tensor *v, const heed_tensor *mask,
                                                         int32_t block, float scale, int32_t causal,
                                                         const heed_tensor *o, const heed_tensor *lse);

/* Block mask estimate from mean-pooled Q and K blocks.
 *
 *   q [B, H, Nq, d], k [B, Hkv, Nk, d]: f32/f16/bf16, same dtype
 *   block 64 or 128; coverage in (0, 1]; scale as above; causal as above (top-left)
 *   mask [B, H, ceil(Nq/block), ceil(Nk/block)] u8, every element written with 0 or 1
 *
 * For query block qb: qbar = mean of its rows, kbar_kb = mean of key block kb's rows (a last,
 * partial block averages the rows it has). The visible key blocks are all, or with causal
 * kb <= min(qb, last key block). s_kb = scale qbar . kbar_kb, p = softmax of s over the visible
 * blocks. Kept: the fewest visible blocks, taken by descending s (ties: lower kb first), whose p
 * sum reaches coverage; that is, a block is kept when the p of the blocks ranked before it sum
 * to less than coverage (coverage 1 keeps every visible block). Always kept: block 0 and the
 * diagonal block min(qb, last key block). */
HEED_API heed_status heed_block_mask_estimate(const heed_tensor *q, const heed_tensor *k, int32_t block,
                                              float coverage, float scale, int32_t causal,
                                              const heed_tensor *mask);

/* CPU path selection, process-wide, for tests and measurements.
 *   reference nonzero: the plain scalar reference loops; zero (default): the fast path
 *     (AVX2 where the CPU has AVX2+FMA+F16C, threaded).
 *   threads: worker threads of the fast path; 0 (default) = the hardware's count. */
HEED_API heed_status heed_attention_cpu_config(int32_t reference, int32_t threads);

HEED_EXTERN_C_END

#endif /* HEED_ATTENTION_H */
