// linear_attention.cpp - causal chunked linear attention on the CPU.
//
// One (batch, head) at a time: inside a chunk of 64 tokens the exact quadratic form
// (sum over s <= t of lambda^(t-s) (q_t.k_s) v_s), from earlier chunks lambda^(t+1) q_t^T S.
// The state S (d x dv) then absorbs the chunk. The reference path runs this with scalar loops
// on one thread; the fast path runs the same steps with AVX2 dot/axpy, (batch, head) pairs
// spread over threads.
#include <cmath>
#include <vector>

#include "cpu/linear_kv_cpu.hpp"
#include "cpu/parallel_for.hpp"
#include "cpu/simd.hpp"
#include "tensor_view.hpp"

namespace heed::linear_kv {
namespace {

constexpr int64_t kChunk = HEED_LINEAR_CHUNK;

struct scalar_ops {
    static float dot(const float *a, const float *b, int64_t n) { return simd::dot_scalar(a, b, n); }
    static void axpy(float a, const float *x, float *y, int64_t n) { simd::axpy_scalar(a, x, y, n); }
    static void scale(float a, float *y, int64_t n) { simd::scale_scalar(a, y, n); }
};

#if HEED_HAVE_AVX2_PATH
struct avx2_ops {
    HEED_AVX2 static float dot(const float *a, const float *b, int64_t n) { return simd::dot_avx2(a, b, n); }
    HEED_AVX2 static void axpy(float a, const float *x, float *y, int64_t n) { simd::axpy_avx2(a, x, y, n); }
    HEED_AVX2 static void scale(float a, float *y, int64_t n) { simd::scale_avx2(a, y, n); }
};
#endif

inline float feature(float x, int map) {
    if (map == HEED_LINEAR_FEATURE_ELU1) return x > 0.0f ? x + 1.0f : std::exp(x);
    return x;
}

// Guarded denominator: |den| < eps becomes copysign(eps, den), and 0 becomes +eps.
inline float guard(float den, float eps) {
    if (std::fabs(den) >= eps) return den;
    return den < 0.0f ? -eps : eps;
}

template <typename Ops>
inline void linear_one_head(const linear_args &a, int64_t b, int64_t h) {
    const int64_t d = a.d, dv = a.dv, N = a.N;
    float lambda = 1.0f;
    if (a.decay) lambda = load_f32(*a.decay, h * stride_at(*a.decay, 0));
    float pw[kChunk + 1];  // lambda^i
    for (int i = 0; i <= kChunk; ++i) pw[i] = (float)std::pow((double)lambda, (double)i);

    std::vector<float> S(d * dv, 0.0f), z(d, 0.0f), Qc(kChunk * d), Kc(kChunk * d), Vc(kChunk * dv), o(dv);
    if (a.state_in) {
        const heed_tensor &t = *a.state_in;
        for (int64_t i = 0; i < d; ++i)
            for (int64_t j = 0; j < dv; ++j)
                S[i * dv + j] = load_f32(t, b * stride_at(t, 0) + h * stride_at(t, 1) + i * stride_at(t, 2) + j * stride_at(t, 3));
    }
    if (a.z_in) {
        const heed_tensor &t = *a.z_in;
        for (int64_t i = 0; i < d; ++i) z[i] = load_f32(t, b * stride_at(t, 0) + h * stride_at(t, 1) + i * stride_at(t, 2));
    }
    auto base = [&](const heed_tensor &t) { return b * stride_at(t, 0) + h * stride_at(t, 1); };
    const int64_t qb = base(*a.q), kb = base(*a.k), vb = base(*a.v), ob = base(*a.out);
    const int64_t qs2 = stride_at(*a.q, 2), qs3 = stride_at(*a.q, 3), ks2 = stride_at(*a.k, 2), ks3 = stride_at(*a.k, 3);
    const int64_t vs2 = stride_at(*a.v, 2), vs3 = stride_at(*a.v, 3), os2 = stride_at(*a.out, 2), os3 = stride_at(*a.out, 3);

    for (int64_t c0 = 0; c0 < N; c0 += kChunk) {
        const int64_t L = std::min(kChunk, N - c0);
        for (int64_t t = 0; t < L; ++t) {
            for (int64_t i = 0; i < d; ++i) {
                Qc[t * d + i] = feature(load_f32(*a.q, qb + (c0 + t) * qs2 + i * qs3), a.feature_map);
                Kc[t * d + i] = feature(load_f32(*a.k, kb + (c0 + t) * ks2 + i * ks3), a.feature_map);
            }
            for (int64_t j = 0; j < dv; ++j) Vc[t * dv + j] = load_f32(*a.v, vb + (c0 + t) * vs2 + j * vs3);
        }
        for (int64_t t = 0; t < L; ++t) {
            const float *qt = &Qc[t * d];
            // Earlier chunks, through the state: lambda^(t+1) q_t^T S.
            std::fill(o.begin(), o.end(), 0.0f);
            for (int64_t i = 0; i < d; ++i) Ops::axpy(qt[i], &S[i * dv], o.data(), dv);
            Ops::scale(pw[t + 1], o.data(), dv);
            float den = pw[t + 1] * Ops::dot(qt, z.data(), d);
            // This chunk, exactly.
            for (int64_t s = 0; s <= t; ++s) {
                float w = pw[t - s] * Ops::dot(qt, &Kc[s * d], d);
                Ops::axpy(w, &Vc[s * dv], o.data(), dv);
                den += w;
            }
            if (a.normalize) Ops::scale(1.0f / guard(den, a.epsilon), o.data(), dv);
            for (int64_t j = 0; j < dv; ++j) store_f32(*a.out, ob + (c0 + t) * os2 + j * os3, o[j]);
        }
        // S <- lambda^L S + sum_s lambda^(L-1-s) k_s v_s^T, and z likewise.
        Ops::scale(pw[L], S.data(), d * dv);
        Ops::scale(pw[L], z.data(), d);
        for (int64_t s = 0; s < L; ++s) {
            const float w = pw[L - 1 - s];
            const float *ks = &Kc[s * d];
            for (int64_t i = 0; i < d; ++i) Ops::axpy(w * ks[i], &Vc[s * dv], &S[i * dv], dv);
            Ops::axpy(w, ks, z.data(), d);
        }
    }
    if (a.state_out) {
        const heed_tensor &t = *a.state_out;
        for (int64_t i = 0; i < d; ++i)
            for (int64_t j = 0; j < dv; ++j)
                store_f32(t, b * stride_at(t, 0) + h * stride_at(t, 1) + i * stride_at(t, 2) + j * stride_at(t, 3), S[i * dv + j]);
    }
    if (a.z_out) {
        const heed_tensor &t = *a.z_out;
        for (int64_t i = 0; i < d; ++i) store_f32(t, b * stride_at(t, 0) + h * stride_at(t, 1) + i * stride_at(t, 2), z[i]);
    }
}

#if HEED_HAVE_AVX2_PATH
// flatten: the AVX2 helpers inline into this copy of the loop (it is compiled for AVX2).
HEED_AVX2 __attribute__((flatten)) void linear_one_head_avx2(const linear_args &a, int64_t b, int64_t h) {
    linear_one_head<avx2_ops>(a, b, h);
}
#endif

}  // namespace

heed_status linear_attention_cpu(const linear_args &a) {
    const int64_t pairs = a.B * a.H;
    if (cpu::settings().reference.load() != 0) {
        for (int64_t p = 0; p < pairs; ++p) linear_one_head<scalar_ops>(a, p / a.H, p % a.H);
        return ok();
    }
#if HEED_HAVE_AVX2_PATH
    if (simd::cpu_has_avx2()) {
        cpu::parallel_for(pairs, 1, [&](int64_t lo, int64_t hi) {
            for (int64_t p = lo; p < hi; ++p) linear_one_head_avx2(a, p / a.H, p % a.H);
        });
        return ok();
    }
#endif
    cpu::parallel_for(pairs, 1, [&](int64_t lo, int64_t hi) {
        for (int64_t p = lo; p < hi; ++p) linear_one_head<scalar_ops>(a, p / a.H, p % a.H);
    });
    return ok();
}

}  // namespace heed::linear_kv
