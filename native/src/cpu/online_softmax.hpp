// online_softmax.hpp - the exp-and-sum loops of the online softmax, vectorized where AVX2 is.
#pragma once

#include <cmath>
#include <cstdint>

#include "simd.hpp"

namespace heed::cpu {

// Sum of exp(s[i] - m) over i < n; s[i] = -inf adds 0. Writes p[i] = exp(s[i] - m) when p != null.
inline float exp_sum_scalar(const float *s, int64_t n, float m, float *p) {
    float sum = 0.0f;
    for (int64_t i = 0; i < n; ++i) {
        float e = std::exp(s[i] - m);
        if (p) p[i] = e;
        sum += e;
    }
    return sum;
}

// acc[i] += w * exp(s[i] - m)
inline void exp_accumulate_scalar(const float *s, int64_t n, float m, float w, float *acc) {
    for (int64_t i = 0; i < n; ++i) acc[i] += w * std::exp(s[i] - m);
}

#if HEED_HAVE_AVX2_PATH
HEED_AVX2 inline float exp_sum_avx2(const float *s, int64_t n, float m, float *p) {
    __m256 vm = _mm256_set1_ps(m), sum = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 e = simd::exp_avx2(_mm256_sub_ps(_mm256_loadu_ps(s + i), vm));
        if (p) _mm256_storeu_ps(p + i, e);
        sum = _mm256_add_ps(sum, e);
    }
    return simd::hsum(sum) + exp_sum_scalar(s + i, n - i, m, p ? p + i : nullptr);
}

HEED_AVX2 inline void exp_accumulate_avx2(const float *s, int64_t n, float m, float w, float *acc) {
    __m256 vm = _mm256_set1_ps(m), vw = _mm256_set1_ps(w);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 e = simd::exp_avx2(_mm256_sub_ps(_mm256_loadu_ps(s + i), vm));
        _mm256_storeu_ps(acc + i, _mm256_fmadd_ps(vw, e, _mm256_loadu_ps(acc + i)));
    }
    exp_accumulate_scalar(s + i, n - i, m, w, acc + i);
}
#endif

inline float exp_sum(const float *s, int64_t n, float m, float *p = nullptr) {
#if HEED_HAVE_AVX2_PATH
    if (simd::cpu_has_avx2()) return exp_sum_avx2(s, n, m, p);
#endif
    return exp_sum_scalar(s, n, m, p);
}

inline void exp_accumulate(const float *s, int64_t n, float m, float w, float *acc) {
#if HEED_HAVE_AVX2_PATH
    if (simd::cpu_has_avx2()) return exp_accumulate_avx2(s, n, m, w, acc);
#endif
    exp_accumulate_scalar(s, n, m, w, acc);
}

inline void axpy(float a, const float *x, float *y, int64_t n) {
#if HEED_HAVE_AVX2_PATH
    if (simd::cpu_has_avx2()) return simd::axpy_avx2(a, x, y, n);
#endif
    simd::axpy_scalar(a, x, y, n);
}

inline void scale(float a, float *y, int64_t n) {
#if HEED_HAVE_AVX2_PATH
    if (simd::cpu_has_avx2()) return simd::scale_avx2(a, y, n);
#endif
    simd::scale_scalar(a, y, n);
}

}  // namespace heed::cpu
