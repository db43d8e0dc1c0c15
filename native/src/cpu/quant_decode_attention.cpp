// quant_decode_attention.cpp - decode attention over the quantized KV cache, on the CPU.
//
// Reference: for each query row, a two-pass softmax over the dequantized keys, one row at a
// time. Fast path (flash-decoding): the sequence is cut into splits; a task owns one
// (batch, kv head, split), dequantizes 64 tokens at a time once for all the query rows that
// share the kv head (GQA group x nq rows), keeps an online softmax per row, and writes partial
// (max, sum, unnormalized output); a combine step merges the splits.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "cpu/linear_kv_cpu.hpp"
#include "cpu/parallel_for.hpp"
#include "cpu/simd.hpp"
#include "tensor_view.hpp"

namespace heed::linear_kv {
namespace {

constexpr int64_t kBlock = 64;

inline int64_t off4(const heed_tensor &t, int64_t a, int64_t b, int64_t c, int64_t d) {
    return a * stride_at(t, 0) + b * stride_at(t, 1) + c * stride_at(t, 2) + d * stride_at(t, 3);
}

// Keys row i of nq may see: j < visible(i).
inline int64_t visible(const decode_args &a, int64_t i) { return a.causal ? a.dims.N - a.nq + i + 1 : a.dims.N; }

void decode_reference(const decode_args &a) {
    const quant_dims &D = a.dims;
    const int64_t group = a.H / D.Hkv;
    std::vector<float> q(D.d), kr(D.d), vr(D.dv), s(D.N), o(D.dv);
    for (int64_t b = 0; b < D.B; ++b)
        for (int64_t h = 0; h < a.H; ++h)
            for (int64_t i = 0; i < a.nq; ++i) {
                const int64_t kvh = h / group, n_vis = visible(a, i);
                for (int64_t c = 0; c < D.d; ++c) q[c] = load_f32(*a.q, off4(*a.q, b, h, i, c));
                float m = -INFINITY;
                for (int64_t n = 0; n < n_vis; ++n) {
                    dequant_k_row(*a.cache, D, b, kvh, n, kr.data());
                    s[n] = a.scale * simd::dot_scalar(q.data(), kr.data(), D.d);
                    m = std::fmax(m, s[n]);
                }
                float l = 0.0f;
                std::fill(o.begin(), o.end(), 0.0f);
                for (int64_t n = 0; n < n_vis; ++n) {
                    const float p = std::exp(s[n] - m);
                    l += p;
                    dequant_v_row(*a.cache, D, b, kvh, n, vr.data());
                    simd::axpy_scalar(p, vr.data(), o.data(), D.dv);
                }
                for (int64_t c = 0; c < D.dv; ++c) store_f32(*a.out, off4(*a.out, b, h, i, c), o[c] / l);
            }
}

struct scalar_ops {
    static float dot(const float *x, const float *y, int64_t n) { return simd::dot_scalar(x, y, n); }
    static void axpy(float s, const float *x, float *y, int64_t n) { simd::axpy_scalar(s, x, y, n); }
    static void scale(float s, float *y, int64_t n) { simd::scale_scalar(s, y, n); }
    // out[i] = fma(codes[i], sc[i], ze[i])
    static void dequant(const uint8_t *codes, const float *sc, const float *ze, float *out, int64_t n) {
        for (int64_t i = 0; i < n; ++i) out[i] = std::fma((float)codes[i], sc[i], ze[i]);
    }
    static void dequant1(const uint8_t *codes, float sc, float ze, float *out, int64_t n) {
        for (int64_t i = 0; i < n; ++i) out[i] = std::fma((float)codes[i], sc, ze);
    }
};

#if HEED_HAVE_AVX2_PATH
struct avx2_ops {
    HEED_AVX2 static float dot(const float *x, const float *y, int64_t n) { return simd::dot_avx2(x, y, n); }
    HEED_AVX2 static void axpy(float s, const float *x, float *y, int64_t n) { simd::axpy_avx2(s, x, y, n); }
    HEED_AVX2 static void scale(float s, float *y, int64_t n) { simd::scale_avx2(s, y, n); }
    HEED_AVX2 static __m256 codes8(const uint8_t *c) {
        return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i *>(c))));
    }
    HEED_AVX2 static void dequant(const uint8_t *codes, const float *sc, const float *ze, float *out, int64_t n) {
        int64_t i = 0;
        for (; i + 8 <= n; i += 8)
            _mm256_storeu_ps(out + i, _mm256_fmadd_ps(codes8(codes + i), _mm256_loadu_ps(sc + i), _mm256_loadu_ps(ze + i)));
        for (; i < n; ++i) out[i] = std::fma((float)codes[i], sc[i], ze[i]);
    }
    HEED_AVX2 static void dequant1(const uint8_t *codes, float sc, float ze, float *out, int64_t n) {
        const __m256 s8 = _mm256_set1_ps(sc), z8 = _mm256_set1_ps(ze);
        int64_t i = 0;
        for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, _mm256_fmadd_ps(codes8(codes + i), s8, z8));
        for (; i < n; ++i) out[i] = std::fma((float)codes[i], sc, ze);
    }
};
#endif

// One packed row of n codes to one byte per code (n a multiple of the codes per byte).
inline void unpack_codes(const uint8_t *row, int64_t n, int bits, uint8_t *out) {
    if (bits == 8) {
        std::memcpy(out, row, (size_t)n);
    } else if (bits == 4) {
        for (int64_t i = 0; i < n / 2; ++i) out[2 * i] = row[i] & 0xF, out[2 * i + 1] = row[i] >> 4;
    } else {
        for (int64_t i = 0; i < n / 4; ++i) {
            const uint8_t x = row[i];
            out[4 * i] = x & 3, out[4 * i + 1] = (x >> 2) & 3, out[4 * i + 2] = (x >> 4) & 3, out[4 * i + 3] = x >> 6;
        }
    }
}

// Dequantizes tokens [t0, t0 + T) of one (batch, kv head) into kb [T][d] and vb [T][dv] with the
// same arithmetic as dequant_k_row / dequant_v_row (fma(code, scale, zero), the fp16 copy for
// salient tokens), the K group's scales converted once per group rather than per element.
struct block_dequantizer {
    const decode_args &a;
    int64_t b, kvh, pair;
    int64_t group_loaded = -1;
    std::vector<float> ksc, kze;
    std::vector<uint8_t> codes;
    block_dequantizer(const decode_args &args, int64_t b_, int64_t kvh_)
        : a(args), b(b_), kvh(kvh_), pair(b_ * args.dims.Hkv + kvh_), ksc(args.dims.d), kze(args.dims.d),
          codes(std::max(args.dims.d, args.dims.dv)) {}

    template <typename Ops>
    void run(int64_t t0, int64_t T, float *kb, float *vb) {
        const quant_dims &D = a.dims;
        const heed_quant_kv &c = *a.cache;
        const int32_t *slot = static_cast<const int32_t *>(c.salient_slot.data) + b * D.N;
        const auto *kcodes = static_cast<const uint8_t *>(c.k_codes.data);
        const auto *vcodes = static_cast<const uint8_t *>(c.v_codes.data);
        const auto *kscale = static_cast<const uint16_t *>(c.k_scale.data);
        const auto *kzero = static_cast<const uint16_t *>(c.k_zero.data);
        const auto *vscale = static_cast<const uint16_t *>(c.v_scale.data);
        const auto *vzero = static_cast<const uint16_t *>(c.v_zero.data);
        const int64_t krow = D.d * D.bits / 8, vrow = D.dv * D.bits / 8, VG = D.v_groups();
        for (int64_t t = 0; t < T; ++t) {
            const int64_t n = t0 + t;
            if (slot[n] >= 0 && slot[n] < D.S) {
                dequant_k_row(c, D, b, kvh, n, kb + t * D.d);
                dequant_v_row(c, D, b, kvh, n, vb + t * D.dv);
                continue;
            }
            const int64_t grp = n / D.group;
            if (grp != group_loaded) {
                const int64_t srow = (pair * D.k_groups() + grp) * D.d;
                for (int64_t ch = 0; ch < D.d; ++ch) ksc[ch] = half_to_float(kscale[srow + ch]), kze[ch] = half_to_float(kzero[srow + ch]);
                group_loaded = grp;
            }
            unpack_codes(kcodes + (pair * D.N + n) * krow, D.d, D.bits, codes.data());
            Ops::dequant(codes.data(), ksc.data(), kze.data(), kb + t * D.d, D.d);
            unpack_codes(vcodes + (pair * D.N + n) * vrow, D.dv, D.bits, codes.data());
            const int64_t vs = (pair * D.N + n) * VG;
            for (int64_t gi = 0; gi < VG; ++gi) {
                const int64_t c0 = gi * D.group, c1 = std::min(D.dv, c0 + D.group);
                Ops::dequant1(codes.data() + c0, half_to_float(vscale[vs + gi]), half_to_float(vzero[vs + gi]), vb + t * D.dv + c0,
                              c1 - c0);
            }
        }
    }
};

// Partial results of one split: per row (rows = GQA group x nq) the running max, sum and
// unnormalized output.
struct partials {
    int64_t splits, rows, dv;
    std::vector<float> m, l, acc;  // [pair][split][row], ... [pair][split][row][dv]
};

template <typename Ops>
void decode_split(const decode_args &a, int64_t b, int64_t kvh, int64_t split, int64_t chunk, partials &P) {
    const quant_dims &D = a.dims;
    const int64_t group = a.H / D.Hkv, R = group * a.nq;
    const int64_t n0 = split * chunk, n1 = std::min(D.N, n0 + chunk);
    std::vector<float> q(R * D.d), kb(kBlock * D.d), vb(kBlock * D.dv), sc(kBlock);
    std::vector<int64_t> vis(R);
    for (int64_t r = 0; r < R; ++r) {
        const int64_t h = kvh * group + r / a.nq, i = r % a.nq;
        vis[r] = visible(a, i);
        for (int64_t c = 0; c < D.d; ++c) q[r * D.d + c] = a.scale * load_f32(*a.q, off4(*a.q, b, h, i, c));
    }
    const int64_t base = ((b * D.Hkv + kvh) * P.splits + split) * R;
    float *m = &P.m[base], *l = &P.l[base], *acc = &P.acc[base * D.dv];
    for (int64_t r = 0; r < R; ++r) m[r] = -INFINITY, l[r] = 0.0f;
    std::fill(acc, acc + R * D.dv, 0.0f);
    block_dequantizer deq(a, b, kvh);
    for (int64_t t0 = n0; t0 < n1; t0 += kBlock) {
        const int64_t T = std::min(kBlock, n1 - t0);
        deq.run<Ops>(t0, T, kb.data(), vb.data());
        for (int64_t r = 0; r < R; ++r) {
            const int64_t Tr = std::min(T, vis[r] - t0);  // causal: keys this row sees in the block
            if (Tr <= 0) continue;
            float mx = -INFINITY;
            for (int64_t t = 0; t < Tr; ++t) mx = std::fmax(mx, sc[t] = Ops::dot(&q[r * D.d], &kb[t * D.d], D.d));
            const float m_new = std::fmax(m[r], mx);
            const float alpha = std::exp(m[r] - m_new);  // exp(-inf) = 0 on the first block
            float *o = &acc[r * D.dv];
            Ops::scale(alpha, o, D.dv);
            float sum = 0.0f;
            for (int64_t t = 0; t < Tr; ++t) {
                const float p = std::exp(sc[t] - m_new);
                sum += p;
                Ops::axpy(p, &vb[t * D.dv], o, D.dv);
            }
            l[r] = l[r] * alpha + sum;
            m[r] = m_new;
        }
    }
}

#if HEED_HAVE_AVX2_PATH
HEED_AVX2 __attribute__((flatten)) void decode_split_avx2(const decode_args &a, int64_t b, int64_t kvh, int64_t split,
                                                          int64_t chunk, partials &P) {
    decode_split<avx2_ops>(a, b, kvh, split, chunk, P);
}
#endif

void combine(const decode_args &a, const partials &P) {
    const quant_dims &D = a.dims;
    const int64_t group = a.H / D.Hkv, R = P.rows;
    std::vector<float> o(D.dv);
    for (int64_t b = 0; b < D.B; ++b)
        for (int64_t kvh = 0; kvh < D.Hkv; ++kvh)
            for (int64_t r = 0; r < R; ++r) {
                float M = -INFINITY;
                for (int64_t s = 0; s < P.splits; ++s) M = std::fmax(M, P.m[((b * D.Hkv + kvh) * P.splits + s) * R + r]);
                float L = 0.0f;
                std::fill(o.begin(), o.end(), 0.0f);
                for (int64_t s = 0; s < P.splits; ++s) {
                    const int64_t idx = ((b * D.Hkv + kvh) * P.splits + s) * R + r;
                    if (P.l[idx] == 0.0f) continue;  // a split this row sees nothing of
                    const float w = std::exp(P.m[idx] - M);
                    L += w * P.l[idx];
                    simd::axpy_scalar(w, &P.acc[idx * D.dv], o.data(), D.dv);
                }
                const int64_t h = kvh * group + r / a.nq, i = r % a.nq;
                for (int64_t c = 0; c < D.dv; ++c) store_f32(*a.out, off4(*a.out, b, h, i, c), o[c] / L);
            }
}

}  // namespace

heed_status quant_decode_cpu(const decode_args &a) {
    if (cpu::settings().reference.load() != 0) {
        decode_reference(a);
        return ok();
    }
    const quant_dims &D = a.dims;
    const int64_t pairs = D.B * D.Hkv;
    int64_t splits = a.num_splits;
    if (splits <= 0) {  // enough tasks for every thread, each at least a few blocks long
        const int64_t threads = cpu::worker_count(1 << 20);
        splits = std::min<int64_t>((2 * threads + pairs - 1) / pairs, (D.N + 4 * kBlock - 1) / (4 * kBlock));
    }
    splits = std::max<int64_t>(1, std::min(splits, D.N));
    const int64_t chunk = (D.N + splits - 1) / splits;
    splits = (D.N + chunk - 1) / chunk;
    partials P;
    P.splits = splits;
    P.rows = (a.H / D.Hkv) * a.nq;
    P.dv = D.dv;
    P.m.assign(pairs * splits * P.rows, -INFINITY);
    P.l.assign(pairs * splits * P.rows, 0.0f);
    P.acc.assign(pairs * splits * P.rows * D.dv, 0.0f);
    const bool avx2 = simd::cpu_has_avx2();
    cpu::parallel_for(pairs * splits, 1, [&](int64_t lo, int64_t hi) {
        for (int64_t task = lo; task < hi; ++task) {
            const int64_t pair = task / splits, split = task % splits;
#if HEED_HAVE_AVX2_PATH
            if (avx2) {
                decode_split_avx2(a, pair / D.Hkv, pair % D.Hkv, split, chunk, P);
                continue;
            }
#endif
            decode_split<scalar_ops>(a, pair / D.Hkv, pair % D.Hkv, split, chunk, P);
        }
    });
    (void)avx2;
    combine(a, P);
    return ok();
}

}  // namespace heed::linear_kv
