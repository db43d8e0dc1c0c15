// attention_aggregate.cpp - per-key attention mass on the CPU: a scalar reference and a fast
// path (rows converted to f32 once, AVX2 dots and exps, threads over rows then over keys).
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
constexpr int64_t kTile = 64;  // keys scored at once

std::vector<int32_t> load_positions(const tview &p, int64_t n) {
    std::vector<int32_t> out(n);
    const int32_t *data = static_cast<const int32_t *>(p.t->data);
    for (int64_t i = 0; i < n; ++i) out[i] = data[i * p.s[0]];
    return out;
}

void store_outputs(const aggregate_args &a, const std::vector<float> &total, const std::vector<float> &per_head) {
    for (int64_t j = 0; j < a.n_k; ++j) store_f32(*a.out.t, j * a.out.s[0], total[j]);
    if (a.out_per_head.present())
        for (int64_t h = 0; h < a.H; ++h)
            for (int64_t j = 0; j < a.n_k; ++j)
                store_f32(*a.out_per_head.t, h * a.out_per_head.s[0] + j * a.out_per_head.s[1], per_head[h * a.n_k + j]);
}

// The plain loops, kept as the reference the fast path is tested against.
heed_status aggregate_reference(const aggregate_args &a) {
    const int64_t group = a.H / a.Hkv;
    std::vector<int32_t> qpos = load_positions(a.q_pos, a.n_q), kpos = load_positions(a.k_pos, a.n_k);
    std::vector<float> total(a.n_k, 0.0f), per_head(a.out_per_head.present() ? a.H * a.n_k : 0, 0.0f);
    auto score = [&](int64_t i, int64_t h, int64_t j) {
        const int64_t g = h / group;
        float s = 0.0f;
        for (int64_t c = 0; c < a.d; ++c)
            s += load_f32(*a.q.t, i * a.q.s[0] + h * a.q.s[1] + c * a.q.s[2]) *
                 load_f32(*a.k.t, j * a.k.s[0] + g * a.k.s[1] + c * a.k.s[2]);
        return s * a.scale;
    };
    for (int64_t h = 0; h < a.H; ++h) {
        for (int64_t i = 0; i < a.n_q; ++i) {
            float m = kNegInf, l = 0.0f;  // pass 1: online max and sum
            for (int64_t j = 0; j < a.n_k; ++j) {
                if (a.causal && kpos[j] > qpos[i]) continue;
                float s = score(i, h, j);
                if (s > m) {
                    l = l * std::exp(m - s) + 1.0f;
                    m = s;
                } else {
                    l += std::exp(s - m);
                }
            }
            if (l == 0.0f) continue;  // no visible key: the row adds nothing
            for (int64_t j = 0; j < a.n_k; ++j) {  // pass 2: the probabilities
                if (a.causal && kpos[j] > qpos[i]) continue;
                float p = std::exp(score(i, h, j) - m) / l;
                total[j] += p;
                if (!per_head.empty()) per_head[h * a.n_k + j] += p;
            }
        }
    }
    store_outputs(a, total, per_head);
    return HEED_OK;
}

heed_status aggregate_fast(const aggregate_args &a) {
    const int64_t group = a.H / a.Hkv, d = a.d, n_q = a.n_q, n_k = a.n_k, H = a.H;
    std::vector<int32_t> qpos = load_positions(a.q_pos, n_q), kpos = load_positions(a.k_pos, n_k);
    // Q as [n_q][H][d] and K as [Hkv][n_k][d], f32 and contiguous.
    std::vector<float> qf(n_q * H * d), kf(a.Hkv * n_k * d);
    parallel_for(n_q * H, 64, [&](int64_t b, int64_t e) {
        for (int64_t r = b; r < e; ++r)
            load_row(*a.q.t, (r / H) * a.q.s[0] + (r % H) * a.q.s[1], a.q.s[2], d, &qf[r * d]);
    });
    parallel_for(a.Hkv * n_k, 256, [&](int64_t b, int64_t e) {
        for (int64_t r = b; r < e; ++r)
            load_row(*a.k.t, (r % n_k) * a.k.s[0] + (r / n_k) * a.k.s[1], a.k.s[2], d, &kf[r * d]);
    });
    // Smallest key position per tile: a causal row skips tiles that lie wholly after it.
    const int64_t tiles = (n_k + kTile - 1) / kTile;
    std::vector<int32_t> tile_min(tiles, std::numeric_limits<int32_t>::max());
    for (int64_t j = 0; j < n_k; ++j) tile_min[j / kTile] = std::min(tile_min[j / kTile], kpos[j]);

    auto scores = [&](const float *qr, const float *kg, int32_t qp, int64_t j0, int64_t nb, float *s) {
        float best = kNegInf;
        for (int64_t jj = 0; jj < nb; ++jj) {
            const int64_t j = j0 + jj;
            s[jj] = (a.causal && kpos[j] > qp) ? kNegInf : a.scale * dot(qr, kg + j * d, d);
            best = std::max(best, s[jj]);
        }
        return best;
    };

    // Pass 1: row max and sum for every (row, head).
    std::vector<float> row_max(n_q * H), row_inv(n_q * H);
    parallel_for(n_q * H, 4, [&](int64_t b, int64_t e) {
        float s[kTile];
        for (int64_t r = b; r < e; ++r) {
            const int64_t i = r / H, h = r % H;
            const float *qr = &qf[r * d], *kg = &kf[(h / group) * n_k * d];
            float m = kNegInf, l = 0.0f;
            for (int64_t t = 0; t < tiles; ++t) {
                if (a.causal && tile_min[t] > qpos[i]) continue;
                const int64_t j0 = t * kTile, nb = std::min(kTile, n_k - j0);
                float best = scores(qr, kg, qpos[i], j0, nb, s);
                if (best == kNegInf) continue;
                if (best > m) {
                    l *= std::exp(m - best);
                    m = best;
                }
                l += exp_sum(s, nb, m);
            }
            row_max[r] = m;
            row_inv[r] = l > 0.0f ? 1.0f / l : 0.0f;
        }
    });

    // Pass 2: each key tile belongs to one task, so sums need no atomics and are deterministic.
    parallel_for(tiles, 1, [&](int64_t b, int64_t e) {
        float s[kTile], total[kTile], acc[kTile];
        for (int64_t t = b; t < e; ++t) {
            const int64_t j0 = t * kTile, nb = std::min(kTile, n_k - j0);
            std::fill(total, total + nb, 0.0f);
            for (int64_t h = 0; h < H; ++h) {
                const float *kg = &kf[(h / group) * n_k * d];
                std::fill(acc, acc + nb, 0.0f);
                for (int64_t i = 0; i < n_q; ++i) {
                    const int64_t r = i * H + h;
                    if (row_inv[r] == 0.0f || (a.causal && tile_min[t] > qpos[i])) continue;
                    scores(&qf[r * d], kg, qpos[i], j0, nb, s);
                    exp_accumulate(s, nb, row_max[r], row_inv[r], acc);
                }
                for (int64_t jj = 0; jj < nb; ++jj) total[jj] += acc[jj];
                if (a.out_per_head.present())
                    for (int64_t jj = 0; jj < nb; ++jj)
                        store_f32(*a.out_per_head.t, h * a.out_per_head.s[0] + (j0 + jj) * a.out_per_head.s[1], acc[jj]);
            }
            for (int64_t jj = 0; jj < nb; ++jj) store_f32(*a.out.t, (j0 + jj) * a.out.s[0], total[jj]);
        }
    });
    return HEED_OK;
}

}  // namespace

heed_status attention_aggregate(const aggregate_args &a) {
    return settings().reference.load() ? aggregate_reference(a) : aggregate_fast(a);
}

}  // namespace heed::cpu
