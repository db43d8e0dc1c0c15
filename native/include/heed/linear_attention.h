/* heed/linear_attention.h - causal linear attention, chunked, with optional per-head decay.
 *
 * For one batch item b and head h, with feature map phi applied to q and k (not v):
 *
 *     S_t = lambda_h * S_{t-1} + phi(k_t) v_t^T          (state, d x dv)
 *     z_t = lambda_h * z_{t-1} + phi(k_t)                (normalizer state, d)
 *     o_t = phi(q_t)^T S_t
 *         = sum_{s<=t} lambda_h^(t-s) (phi(q_t) . phi(k_s)) v_s   (+ lambda_h^(t+1) phi(q_t)^T S_init)
 *
 * and, when normalize is set, o_t / den_t with den_t = phi(q_t) . z_t, guarded: a denominator
 * with |den_t| < epsilon is replaced by copysign(epsilon, den_t) (+epsilon for 0), so no
 * division by (near) zero happens. epsilon <= 0 selects HEED_LINEAR_DEFAULT_EPSILON.
 * S_{-1} = state_in (zeros when NULL), z_{-1} = z_in (zeros when NULL); lambda_h = 1 when
 * decay is NULL. The sequence is processed in chunks of HEED_LINEAR_CHUNK tokens: inside a
 * chunk the exact quadratic form, between chunks through the state. Running a sequence in two
 * calls, the first call's state_out/z_out passed as the second call's state_in/z_in, gives the
 * same result as one call over the whole sequence (up to float rounding).
 *
 * Accumulation is f32 on every path. CPU and CUDA: host or device memory decides (heed/tensor.h).
 * CUDA runs asynchronously on the legacy default stream and takes d <= 128 (HEED_ERR_UNSUPPORTED
 * otherwise); when few (batch, head) pairs would leave the GPU idle it cuts the sequence into
 * parts (a state-only pass, a scan of the part states, then the outputs) and allocates their
 * states with cudaMallocAsync, freed by the same call. */
#ifndef HEED_LINEAR_ATTENTION_H
#define HEED_LINEAR_ATTENTION_H

#include "tensor.h"

HEED_EXTERN_C_BEGIN

#define HEED_LINEAR_CHUNK 64
#define HEED_LINEAR_DEFAULT_EPSILON 1e-6f

typedef enum heed_linear_feature_map {
    HEED_LINEAR_FEATURE_IDENTITY = 0, /* phi(x) = x */
    HEED_LINEAR_FEATURE_ELU1 = 1      /* phi(x) = elu(x) + 1 = x + 1 for x > 0, exp(x) otherwise */
} heed_linear_feature_map;

/* q, k:      [B, H, N, d]  f32, f16 or bf16 (any strides)
 * v:         [B, H, N, dv] f32, f16 or bf16
 * decay:     [H] f32, each in [0, 1], or NULL (no decay, lambda = 1)
 * state_in:  [B, H, d, dv] f32 or NULL;  z_in: [B, H, d] f32 or NULL
 * out:       [B, H, N, dv] f32, f16 or bf16; every element is written
 * state_out: [B, H, d, dv] f32 or NULL;  z_out: [B, H, d] f32 or NULL
 *            (state_out may be the same memory as state_in, z_out as z_in)
 * feature_map: heed_linear_feature_map; normalize: 0 or 1; epsilon: see above. */
HEED_API heed_status heed_linear_attention_causal(const heed_tensor *q, const heed_tensor *k,
                                                  const heed_tensor *v, const heed_tensor *decay,
                                                  const heed_tensor *state_in, const heed_tensor *z_in,
                                                  int32_t feature_map, int32_t normalize, float epsilon,
                                                  heed_tensor *out, heed_tensor *state_out,
                                                  heed_tensor *z_out);

HEED_EXTERN_C_END

#endif /* HEED_LINEAR_ATTENTION_H */
