// rows_f32.hpp - copies rows of an f32/f16/bf16 tensor into a contiguous f32 buffer, so the
// fast kernels' inner loops read one layout with unit stride.
#pragma once

#include <cstdint>

#include "simd.hpp"
#include "tensor_view.hpp"

namespace heed::cpu {

// dst[0..n) = element (offset + i * step) of t, converted to float.
inline void load_row_scalar(const heed_tensor &t, int64_t offset, int64_t step, int64_t n, float *dst) {
    for (int64_t i = 0; i < n; ++i) dst[i] = load_f32(t, offset + i * step);
}

#if HEED_HAVE_AVX2_PATH
HEED_AVX2 inline void load_row_avx2(const heed_tensor &t, int64_t offset, int64_t step, int64_t n, float *dst) {
    if (step != 1 || t.dtype == HEED_F32) {
        load_row_scalar(t, offset, step, n, dst);
        return;
    }
    const uint16_t *src = static_cast<const uint16_t *>(t.data) + offset;
    int64_t i = 0;
    if (t.dtype == HEED_F16)
        for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, simd::load_f16x8(src + i));
    else
        for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, simd::load_bf16x8(src + i));
    for (; i < n; ++i) dst[i] = load_f32(t, offset + i);
}
#endif

inline void load_row(const heed_tensor &t, int64_t offset, int64_t step, int64_t n, float *dst) {
#if HEED_HAVE_AVX2_PATH
    if (simd::cpu_has_avx2()) return load_row_avx2(t, offset, step, n, dst);
#endif
    load_row_scalar(t, offset, step, n, dst);
}

inline float dot(const float *a, const float *b, int64_t n) {
#if HEED_HAVE_AVX2_PATH
    if (simd::cpu_has_avx2()) return simd::dot_avx2(a, b, n);
#endif
    return simd::dot_scalar(a, b, n);
}

}  // namespace heed::cpu
