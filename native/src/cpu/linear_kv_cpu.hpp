// linear_kv_cpu.hpp - the validated arguments of the linear attention, KV quantization and
// quantized decode kernels, and their CPU entry points. linear_kv_api.cpp validates and fills
// these; the CPU (cpu/*.cpp) and CUDA (cuda/*.cu) implementations only compute.
#pragma once

#include <cstdint>

#include "heed.h"

namespace heed::linear_kv {

// Effective stride of dimension d in elements (zero strides: contiguous). The same as
// tensor_view.hpp's stride_of, with the loops bounded by HEED_MAX_DIMS so that GCC can see
// no read past the arrays.
inline int64_t stride_at(const heed_tensor &t, int d) {
    if (d < 0 || d >= HEED_MAX_DIMS) return 0;
    bool all_zero = true;
    for (int i = 0; i < HEED_MAX_DIMS; ++i) all_zero = all_zero && (i >= t.ndim || t.strides[i] == 0);
    if (!all_zero) return t.strides[d];
    int64_t s = 1;
    for (int i = HEED_MAX_DIMS - 1; i > d; --i)
        if (i < t.ndim) s *= t.shape[i];
    return s;
}

inline bool contiguous(const heed_tensor &t) {
    int64_t expected = 1;
    for (int d = HEED_MAX_DIMS - 1; d >= 0; --d) {
        if (d >= t.ndim) continue;
        if (t.shape[d] != 1 && stride_at(t, d) != expected) return false;
        expected *= t.shape[d];
    }
    return true;
}

struct linear_args {
    const heed_tensor *q, *k, *v;
    const heed_tensor *decay;            // may be null
    const heed_tensor *state_in, *z_in;  // may be null
    const heed_tensor *out;
    const heed_tensor *state_out, *z_out;  // may be null
    int feature_map;
    bool normalize;
    float epsilon;
    int64_t B, H, N, d, dv;
};

struct quant_dims {
    int64_t B, Hkv, N, d, dv, S;  // S: salient capacity
    int bits, group;
    int64_t k_groups() const { return (N + group - 1) / group; }
    int64_t v_groups() const { return (dv + group - 1) / group; }
};

struct quantize_args {
    const heed_tensor *k, *v;
    const heed_tensor *mask;  // may be null; u8 [N] or [B, N]
    const heed_quant_kv *cache;
    quant_dims dims;
};

struct dequantize_args {
    const heed_quant_kv *cache;
    const heed_tensor *k_out, *v_out;  // either may be null
    quant_dims dims;
};

struct decode_args {
    const heed_tensor *q;
    const heed_quant_kv *cache;
    const heed_tensor *out;
    quant_dims dims;
    int64_t H, nq;
    bool causal;
    float scale;
    int num_splits;  // 0: choose
};

// CPU kernels (host memory). Each picks the plain reference or the AVX2 + threads path from
// heed_attention_cpu_config's setting.
heed_status linear_attention_cpu(const linear_args &a);
heed_status kv_quantize_cpu(const quantize_args &a);
heed_status kv_dequantize_cpu(const dequantize_args &a);
heed_status quant_decode_cpu(const decode_args &a);

// One token's dequantized K row [d] / V row [dv] (the fp16 copy for a salient token).
void dequant_k_row(const heed_quant_kv &c, const quant_dims &D, int64_t b, int64_t h, int64_t n, float *out);
void dequant_v_row(const heed_quant_kv &c, const quant_dims &D, int64_t b, int64_t h, int64_t n, float *out);

// fp16 rounded towards -inf / +inf (the quantizer's zero and scale), as IEEE half bits.
uint16_t half_round_down(float x);
uint16_t half_round_up(float x);

}  // namespace heed::linear_kv
