// block_sparse_attention.cpp - the block mask estimate on the CPU: mean-pool Q and K blocks,
// softmax the pooled scores per query block, keep the fewest key blocks that reach coverage.
// (The block-sparse forward itself is flash_attention.cpp's loop with a mask.)
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include "attention_args.hpp"
#include "cpu/parallel_for.hpp"
#include "cpu/rows_f32.hpp"

namespace heed::cpu {
namespace {

// Mean of rows [r0, r1) of the (b, head) slice of a [B, heads, N, d] tensor, into out[d].
void pooled_mean(const tview &t, int64_t b, int64_t head, int64_t r0, int64_t r1, int64_t d, float *out) {
    std::vector<double> sum(d, 0.0);
    for (int64_t r = r0; r < r1; ++r)
        for (int64_t c = 0; c < d; ++c) sum[c] += load_f32(*t.t, b * t.s[0] + head * t.s[1] + r * t.s[2] + c * t.s[3]);
    for (int64_t c = 0; c < d; ++c) out[c] = (float)(sum[c] / (double)(r1 - r0));
}

}  // namespace

heed_status block_mask_estimate(const mask_estimate_args &a) {
    const int64_t bs = a.block, d = a.d;
    const int64_t nqb = (a.Nq + bs - 1) / bs, nkb = (a.Nk + bs - 1) / bs, group = a.H / a.Hkv;
    std::vector<float> kbar(a.B * a.Hkv * nkb * d);
    parallel_for(a.B * a.Hkv * nkb, 4, [&](int64_t b0, int64_t e) {
        for (int64_t r = b0; r < e; ++r) {
            const int64_t kb = r % nkb, g = (r / nkb) % a.Hkv, b = r / (nkb * a.Hkv);
            pooled_mean(a.k, b, g, kb * bs, std::min(a.Nk, (kb + 1) * bs), d, &kbar[r * d]);
        }
    });
    parallel_for(a.B * a.H * nqb, 1, [&](int64_t b0, int64_t e) {
        std::vector<float> qbar(d), score(nkb);
        std::vector<int64_t> order(nkb);
        std::vector<uint8_t> keep(nkb);
        for (int64_t r = b0; r < e; ++r) {
            const int64_t qb = r % nqb, h = (r / nqb) % a.H, b = r / (nqb * a.H);
            pooled_mean(a.q, b, h, qb * bs, std::min(a.Nq, (qb + 1) * bs), d, qbar.data());
            const float *kg = &kbar[(b * a.Hkv + h / group) * nkb * d];
            const int64_t diag = std::min(qb, nkb - 1);
            const int64_t visible = a.causal ? diag + 1 : nkb;
            float best = -std::numeric_limits<float>::infinity();
            for (int64_t kb = 0; kb < visible; ++kb) {
                score[kb] = a.scale * dot(qbar.data(), kg + kb * d, d);
                best = std::max(best, score[kb]);
            }
            double total = 0.0;
            for (int64_t kb = 0; kb < visible; ++kb) total += std::exp((double)score[kb] - best);
            std::fill(keep.begin(), keep.end(), 0);
            if (a.coverage >= 1.0f) {
                std::fill(keep.begin(), keep.begin() + visible, 1);
            } else {
                // Rank by score (the softmax is monotone), ties to the lower block.
                std::iota(order.begin(), order.begin() + visible, 0);
                std::sort(order.begin(), order.begin() + visible, [&](int64_t x, int64_t y) {
                    return score[x] > score[y] || (score[x] == score[y] && x < y);
                });
                double before = 0.0;
                for (int64_t rank = 0; rank < visible && before < a.coverage; ++rank) {
                    keep[order[rank]] = 1;
                    before += std::exp((double)score[order[rank]] - best) / total;
                }
            }
            keep[0] = keep[diag] = 1;
            uint8_t *m = static_cast<uint8_t *>(a.mask.t->data);
            for (int64_t kb = 0; kb < nkb; ++kb)
                m[b * a.mask.s[0] + h * a.mask.s[1] + qb * a.mask.s[2] + kb * a.mask.s[3]] = keep[kb];
        }
    });
    return HEED_OK;
}

}  // namespace heed::cpu
