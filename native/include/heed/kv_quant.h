/* heed/kv_quant.h - a quantized K/V cache, and decode attention that reads it directly.
 *
 * Quantization (asymmetric, per group of g elements, g = group_size in {32, 64, 128},
 * bits in {8, 4, 2}, qmax = 2^bits - 1):
 *   K is quantized per channel: for each (b, kv head, channel c) the tokens are cut into
 *     groups of g consecutive tokens (token group j = tokens j*g .. j*g+g-1).
 *   V is quantized per token: for each (b, kv head, token n) the channels are cut into
 *     groups of g consecutive channels.
 *   A partial last group (N or dv not a multiple of g) is a group of the remaining elements;
 *   its statistics come from those elements only.
 *   For a group with minimum lo and maximum hi over its (non-salient) elements:
 *     zero  = lo rounded DOWN to fp16,
 *     scale = (hi - zero) / qmax rounded UP to fp16,
 *     q     = clamp(round_half_even((x - zero) / scale), 0, qmax)   (q = 0 where scale = 0)
 *     x^    = fmaf(q, scale, zero)                                   (f32)
 *   Rounding zero down and scale up keeps [lo, hi] inside the representable range, so every
 *   element satisfies |x^ - x| <= scale / 2 (exactly, plus f32 rounding of the two steps).
 *   A constant group whose value is exactly an fp16 number gets scale 0, zero = the value,
 *   codes 0, and is reconstructed exactly; a constant group of any other value falls under the
 *   general rule (a tiny positive scale). A group with no non-salient element gets scale 0 and
 *   zero 0. Inputs must be finite with |x| <= 65504 (fp16 range); other values give
 *   unspecified (but in-range) codes.
 *
 * Salient tokens: salient_mask (u8, [N] for every batch item, or [B, N]; nonzero = salient)
 *   marks tokens kept at fp16: their K and V rows (all kv heads) are copied to salient_k /
 *   salient_v, their codes are 0, they take no part in the group statistics, and dequantize
 *   and decode attention use the fp16 copy. salient_slot[b, n] is the row of token n in the
 *   salient tensors (in token order), or -1. A batch item may have at most salient_capacity
 *   salient tokens (HEED_ERR_INVALID_ARGUMENT otherwise).
 *
 * Packed layout (all tensors contiguous, row-major; the caller owns and allocates them):
 *   k_codes  [B, Hkv, N, d]   HEED_U8 (bits 8) / HEED_U4 / HEED_U2: a token's d codes are
 *            packed low bits first (heed/tensor.h): for HEED_U4 byte i of a row holds channel
 *            2i in bits 0-3 and 2i+1 in bits 4-7; for HEED_U2 byte i holds channel 4i+j in
 *            bits 2j..2j+1. Row bytes: d * bits / 8.
 *   k_scale, k_zero [B, Hkv, ceil(N/g), d]  HEED_F16 (per token group, per channel)
 *   v_codes  [B, Hkv, N, dv]  as k_codes
 *   v_scale, v_zero [B, Hkv, N, ceil(dv/g)] HEED_F16 (per token, per channel group)
 *   salient_slot  [B, N]  HEED_I32
 *   salient_count [B]     HEED_I32
 *   salient_k [B, Hkv, S, d], salient_v [B, Hkv, S, dv]  HEED_F16, S = salient_capacity
 *            (S may be 0: then these tensors hold no data and no token may be salient)
 * d and dv must be multiples of 8 / bits' codes per byte (2 for int4, 4 for int2).
 *
 * Use: heed_quant_kv_sizes() fills shapes, dtypes and byte sizes of every tensor with data
 * NULL; the caller points each .data at memory of that size (host, or all on one CUDA
 * device) and calls heed_kv_quantize(). libheed allocates nothing for the cache. */
#ifndef HEED_KV_QUANT_H
#define HEED_KV_QUANT_H

#include "tensor.h"

HEED_EXTERN_C_BEGIN

#define HEED_QUANT_KV_TENSORS 10

typedef struct heed_quant_kv {
    int32_t bits;       /* 8, 4 or 2 */
    int32_t group_size; /* 32, 64 or 128 */
    heed_tensor k_codes;
    heed_tensor k_scale;
    heed_tensor k_zero;
    heed_tensor v_codes;
    heed_tensor v_scale;
    heed_tensor v_zero;
    heed_tensor salient_slot;
    heed_tensor salient_count;
    heed_tensor salient_k;
    heed_tensor salient_v;
} heed_quant_kv;

/* Fills cache (bits, group_size, every tensor's dtype/ndim/shape, zero strides, data NULL)
 * and, when bytes is not NULL, bytes[i] for the i-th tensor in declaration order (k_codes
 * first, salient_v last; HEED_QUANT_KV_TENSORS entries). total_bytes (may be NULL) gets the
 * sum. value_dim is dv (usually = head_dim). salient_capacity >= 0. */
HEED_API heed_status heed_quant_kv_sizes(int64_t batch, int64_t kv_heads, int64_t tokens,
                                         int64_t head_dim, int64_t value_dim, int32_t bits,
                                         int32_t group_size, int64_t salient_capacity,
                                         heed_quant_kv *cache, size_t *bytes, size_t *total_bytes);

/* k: [B, Hkv, N, d], v: [B, Hkv, N, dv], f32/f16/bf16, any strides. salient_mask: u8 [N] or
 * [B, N], or NULL (no salient tokens). Writes every tensor of cache (shapes must match
 * heed_quant_kv_sizes for these dimensions). On CUDA this call synchronizes (it checks the
 * salient counts against the capacity). */
HEED_API heed_status heed_kv_quantize(const heed_tensor *k, const heed_tensor *v,
                                      const heed_tensor *salient_mask, heed_quant_kv *cache);

/* k_out: [B, Hkv, N, d], v_out: [B, Hkv, N, dv], f32/f16/bf16, either may be NULL. Salient
 * tokens come back as their fp16 copies, the rest as x^ above. */
HEED_API heed_status heed_kv_dequantize(const heed_quant_kv *cache, heed_tensor *k_out,
                                        heed_tensor *v_out);

/* Decode attention over the quantized cache, dequantizing on the fly:
 *   out[b, h, i] = softmax_j(scale * q[b, h, i] . k^[b, h / (H / Hkv), j]) v^[b, h / (H / Hkv), j]
 * q: [B, H, nq, d] f32/f16/bf16 with 1 <= nq <= 8 and nq <= N; H a multiple of Hkv (GQA,
 * query head h reads kv head h / (H / Hkv)). The nq rows are the last nq positions of the
 * sequence: with causal = 1, row i sees keys j <= N - nq + i; with causal = 0 all N keys.
 * scale <= 0 selects 1/sqrt(d). num_splits: how many parts the sequence is cut into
 * (flash-decoding: per-part softmax statistics, then a combine step); 0 chooses. The result
 * does not depend on it beyond float rounding. out: [B, H, nq, dv] f32 or f16, every element
 * written. CUDA: d = dv in {64, 128} and 16-byte aligned k_codes/v_codes (HEED_ERR_UNSUPPORTED
 * otherwise), asynchronous on the legacy default stream; the split partials live in
 * stream-ordered memory (cudaMallocAsync) freed by the same call. */
HEED_API heed_status heed_quant_decode_attention(const heed_tensor *q, const heed_quant_kv *cache,
                                                 int32_t causal, float scale, int32_t num_splits,
                                                 heed_tensor *out);

HEED_EXTERN_C_END

#endif /* HEED_KV_QUANT_H */
