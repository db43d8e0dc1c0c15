// flash_attention.cpp - flash (and block-sparse) attention forward on the CPU: a scalar
// reference and a fast path (K/V converted to f32 once, one query row per task, key tiles of 64
// with an online softmax; AVX2 dots, exps and axpys).
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "attention_args.hpp"
#include "cpu/parallel_for.hpp"
#include "cpu/rows_f32.hpp"
#include "cpu/online_softmax.hpp"

namespace heed::cpu {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();
constexpr int64_t kTile = 64;  // keys per step; divides both mask block sizes (64, 128)

// mask[b, h, i / block, j / block] != 0, or true for flash attention.
inline bool block_kept(const attention_args &a, int64_t b, int64_t h, int64_t i, int64_t j) {
    if (!a.mask.present()) return true;
    const uint8_t *m = static_cast<const uint8_t *>(a.mask.t->data);
    return m[b * a.mask.s[0] + h * a.mask.s[1] + (i / a.block) * a.mask.s[2] + (j / a.block) * a.mask.s[3]] != 0;
}

// Writes one finished row: o = acc / l, lse = m + log l (a row that saw nothing: 0 and -inf).
void finish_row(const attention_args &a, int64_t b, int64_t h, int64_t i, const float *acc, float m, float l) {
    const int64_t base = b * a.o.s[0] + h * a.o.s[1] + i * a.o.s[2];
    const float inv = l > 0.0f ? 1.0f / l : 0.0f;
    for (int64_t c = 0; c < a.d; ++c) store_f32(*a.o.t, base + c * a.o.s[3], acc[c] * inv);
    if (a.lse.present())
        store_f32(*a.lse.t, b * a.lse.s[0] + h * a.lse.s[1] + i * a.lse.s[2], l > 0.0f ? m + std::log(l) : kNegInf);
}

heed_status forward_reference(const attention_args &a) {
    const int64_t group = a.H / a.Hkv;
    std::vector<float> acc(a.d);
    for (int64_t b = 0; b < a.B; ++b)
        for (int64_t h = 0; h < a.H; ++h)
            for (int64_t i = 0; i < a.Nq; ++i) {
                const int64_t g = h / group;
                float m = kNegInf, l = 0.0f;
                std::fill(acc.begin(), acc.end(), 0.0f);
                for (int64_t j = 0; j < a.Nk; ++j) {
                    if ((a.causal && j > i) || !block_kept(a, b, h, i, j)) continue;
                    float s = 0.0f;
                    for (int64_t c = 0; c < a.d; ++c)
                        s += load_f32(*a.q.t, b * a.q.s[0] + h * a.q.s[1] + i * a.q.s[2] + c * a.q.s[3]) *
                             load_f32(*a.k.t, b * a.k.s[0] + g * a.k.s[1] + j * a.k.s[2] + c * a.k.s[3]);
                    s *= a.scale;
                    float p = 1.0f;
                    if (s > m) {  // new max: rescale what was summed so far
                        const float corr = std::exp(m - s);
                        l *= corr;
                        for (auto &x : acc) x *= corr;
                        m = s;
                    } else {
                        p = std::exp(s - m);
                    }
                    l += p;
                    for (int64_t c = 0; c < a.d; ++c)
                        acc[c] += p * load_f32(*a.v.t, b * a.v.s[0] + g * a.v.s[1] + j * a.v.s[2] + c * a.v.s[3]);
                }
                finish_row(a, b, h, i, acc.data(), m, l);
            }
    return HEED_OK;
}

heed_status forward_fast(const attention_args &a) {
    const int64_t group = a.H / a.Hkv, d = a.d, Nk = a.Nk;
    // K and V as [B][Hkv][Nk][d] f32.
    const int64_t kv_rows = a.B * a.Hkv * Nk;
    std::vector<float> kf(kv_rows * d), vf(kv_rows * d);
    parallel_for(kv_rows, 256, [&](int64_t b, int64_t e) {
        for (int64_t r = b; r < e; ++r) {
            const int64_t j = r % Nk, g = (r / Nk) % a.Hkv, bb = r / (Nk * a.Hkv);
            load_row(*a.k.t, bb * a.k.s[0] + g * a.k.s[1] + j * a.k.s[2], a.k.s[3], d, &kf[r * d]);
            load_row(*a.v.t, bb * a.v.s[0] + g * a.v.s[1] + j * a.v.s[2], a.v.s[3], d, &vf[r * d]);
        }
    });
    const int64_t rows = a.B * a.H * a.Nq;
    const int64_t tiles = (Nk + kTile - 1) / kTile;
    parallel_for(rows, 8, [&](int64_t rb, int64_t re) {
        std::vector<float> q(d), acc(d);
        float s[kTile];
        for (int64_t r = rb; r < re; ++r) {
            const int64_t i = r % a.Nq, h = (r / a.Nq) % a.H, b = r / (a.Nq * a.H);
            load_row(*a.q.t, b * a.q.s[0] + h * a.q.s[1] + i * a.q.s[2], a.q.s[3], d, q.data());
            const int64_t kv = (b * a.Hkv + h / group) * Nk;
            const float *kg = &kf[kv * d], *vg = &vf[kv * d];
            float m = kNegInf, l = 0.0f;
            std::fill(acc.begin(), acc.end(), 0.0f);
            for (int64_t t = 0; t < tiles; ++t) {
                const int64_t j0 = t * kTile;
                if (a.causal && j0 > i) break;  // tiles after the diagonal see nothing
                if (!block_kept(a, b, h, i, j0)) continue;  // a tile lies inside one mask block
                const int64_t nb = std::min(kTile, a.causal ? std::min(Nk, i + 1) - j0 : Nk - j0);
                float best = kNegInf;
                for (int64_t jj = 0; jj < nb; ++jj) {
                    s[jj] = a.scale * dot(q.data(), kg + (j0 + jj) * d, d);
                    best = std::max(best, s[jj]);
                }
                if (best > m) {
                    const float corr = std::exp(m - best);
                    l *= corr;
                    scale(corr, acc.data(), d);
                    m = best;
                }
                l += exp_sum(s, nb, m, s);  // s now holds the probabilities
                for (int64_t jj = 0; jj < nb; ++jj) axpy(s[jj], vg + (j0 + jj) * d, acc.data(), d);
            }
            finish_row(a, b, h, i, acc.data(), m, l);
        }
    });
    return HEED_OK;
}

}  // namespace

heed_status attention_forward(const attention_args &a) {
    return settings().reference.load() ? forward_reference(a) : forward_fast(a);
}

}  // namespace heed::cpu
