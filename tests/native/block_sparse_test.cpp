// block_sparse_test.cpp - heed_block_sparse_attention_forward and heed_block_mask_estimate on
// the CPU against float64.
#include <gtest/gtest.h>

#include "kernel_reference.hpp"

using namespace heed_test;

namespace {

HostTensor random_mask(int64_t B, int64_t H, int64_t nqb, int64_t nkb, double density, std::mt19937 &rng) {
    HostTensor m(HEED_U8, {B, H, nqb, nkb});
    std::bernoulli_distribution keep(density);
    for (int64_t i = 0; i < m.count(); ++i) m.set(i, keep(rng) ? 1 : 0);
    return m;
}

void check_sparse(int32_t dt, int64_t B, int64_t H, int64_t Hkv, int64_t Nq, int64_t Nk, int64_t d, int64_t block,
                  bool causal, std::mt19937 &rng, double density = 0.4) {
    SCOPED_TRACE(std::string(dtype_label(dt)) + " H" + std::to_string(H) + "/" + std::to_string(Hkv) + " Nq" +
                 std::to_string(Nq) + " Nk" + std::to_string(Nk) + " d" + std::to_string(d) + " block" +
                 std::to_string(block) + (causal ? " causal" : ""));
    HostTensor q(dt, {B, H, Nq, d}), k(dt, {B, Hkv, Nk, d}), v(dt, {B, Hkv, Nk, d}), o(dt, {B, H, Nq, d}),
        lse(HEED_F32, {B, H, Nq});
    q.fill_normal(rng);
    k.fill_normal(rng);
    v.fill_normal(rng);
    o.poison();
    lse.poison();
    HostTensor mask = random_mask(B, H, (Nq + block - 1) / block, (Nk + block - 1) / block, density, rng);
    heed_tensor tq = q.desc(), tk = k.desc(), tv = v.desc(), to = o.desc(), tl = lse.desc(), tm = mask.desc();
    ASSERT_EQ(heed_block_sparse_attention_forward(&tq, &tk, &tv, &tm, (int32_t)block, 0.0f, causal, &to, &tl), HEED_OK)
        << heed_last_error();
    AttentionRef ref = attention_reference(q, k, v, &mask, block, 1.0 / std::sqrt((double)d), causal);
    EXPECT_LE(relative_error(o, ref.o), tolerance(dt));
    // Rows that see nothing: lse exactly -inf; the others close.
    double num = 0, den = 0;
    for (int64_t i = 0; i < lse.count(); ++i) {
        if (std::isinf(ref.lse[i])) {
            EXPECT_TRUE(std::isinf(lse.flat(i)) && lse.flat(i) < 0) << "row " << i << " lse " << lse.flat(i);
            for (int64_t c = 0; c < d; ++c) EXPECT_EQ(o.flat(i * d + c), 0.0);
        } else {
            num += (lse.flat(i) - ref.lse[i]) * (lse.flat(i) - ref.lse[i]);
            den += ref.lse[i] * ref.lse[i];
        }
    }
    EXPECT_LE(std::sqrt(num / std::max(den, 1e-30)), 2e-5);
}

}  // namespace

TEST(BlockSparseAttention, MatchesFloat64Reference) {
    std::mt19937 rng(2024);
    for (int32_t dt : {HEED_F32, HEED_F16, HEED_BF16})
        for (int64_t block : {64, 128})
            for (bool causal : {false, true}) {
                check_sparse(dt, 1, 8, 2, 130, 200, 64, block, causal, rng);
                check_sparse(dt, 2, 4, 4, 1, 70, 128, block, causal, rng);
            }
    check_sparse(HEED_F32, 1, 8, 1, 257, 129, 64, 64, true, rng, 0.2);  // GQA 8, Nq > Nk
}

TEST(BlockSparseAttention, FullMaskEqualsFlashAttention) {
    std::mt19937 rng(4);
    const int64_t B = 1, H = 4, Hkv = 2, Nq = 100, Nk = 150, d = 64;
    HostTensor q(HEED_F16, {B, H, Nq, d}), k(HEED_F16, {B, Hkv, Nk, d}), v(HEED_F16, {B, Hkv, Nk, d});
    q.fill_normal(rng);
    k.fill_normal(rng);
    v.fill_normal(rng);
    HostTensor mask(HEED_U8, {B, H, 2, 3}), o1(HEED_F16, {B, H, Nq, d}), o2(HEED_F16, {B, H, Nq, d});
    for (int64_t i = 0; i < mask.count(); ++i) mask.set(i, 1);
    heed_tensor tq = q.desc(), tk = k.desc(), tv = v.desc(), tm = mask.desc(), t1 = o1.desc(), t2 = o2.desc();
    ASSERT_EQ(heed_block_sparse_attention_forward(&tq, &tk, &tv, &tm, 64, 0.0f, 1, &t1, nullptr), HEED_OK);
    ASSERT_EQ(heed_flash_attention_forward(&tq, &tk, &tv, 0.0f, 1, &t2, nullptr), HEED_OK);
    EXPECT_EQ(o1.bytes, o2.bytes);
}

TEST(BlockMaskEstimate, MatchesFloat64Reference) {
    std::mt19937 rng(77);
    for (int32_t dt : {HEED_F32, HEED_BF16})
        for (int64_t block : {64, 128})
            for (bool causal : {false, true})
                for (double coverage : {0.5, 0.9, 1.0}) {
                    SCOPED_TRACE(std::string(dtype_label(dt)) + " block " + std::to_string(block) + " coverage " +
                                 std::to_string(coverage) + (causal ? " causal" : ""));
                    const int64_t B = 1, H = 4, Hkv = 2, Nq = 700, Nk = 650, d = 64;
                    HostTensor q(dt, {B, H, Nq, d}), k(dt, {B, Hkv, Nk, d});
                    q.fill_normal(rng);
                    k.fill_normal(rng);
                    // A shared direction gives the pooled scores a spread worth estimating.
                    for (int64_t j = 0; j < Nk; ++j)
                        for (int64_t c = 0; c < 4; ++c) k.set(k.offset({0, j % 2, j, c}), k.at({0, j % 2, j, c}) + (j % 97) / 20.0);
                    for (int64_t i = 0; i < Nq; ++i)
                        for (int64_t hh = 0; hh < H; ++hh) q.set(q.offset({0, hh, i, 0}), q.at({0, hh, i, 0}) + 3.0);
                    const int64_t nqb = (Nq + block - 1) / block, nkb = (Nk + block - 1) / block;
                    HostTensor mask(HEED_U8, {B, H, nqb, nkb});
                    mask.poison();
                    heed_tensor tq = q.desc(), tk = k.desc(), tm = mask.desc();
                    ASSERT_EQ(heed_block_mask_estimate(&tq, &tk, (int32_t)block, (float)coverage, 0.0f, causal, &tm), HEED_OK)
                        << heed_last_error();
                    std::vector<double> margin;
                    auto ref = mask_estimate_reference(q, k, block, coverage, 1.0 / std::sqrt((double)d), causal, &margin);
                    for (int64_t i = 0; i < mask.count(); ++i) {
                        ASSERT_TRUE(mask.bytes[i] == 0 || mask.bytes[i] == 1) << "unwritten mask element " << i;
                        if (margin[i] > 1e-5) {
                        EXPECT_EQ(mask.bytes[i], ref[i]) << "element " << i;
                    }
                    }
                    for (int64_t h = 0; h < H; ++h)
                        for (int64_t qb = 0; qb < nqb; ++qb) {
                            const int64_t diag = std::min(qb, nkb - 1);
                            EXPECT_EQ(mask.at({0, h, qb, 0}), 1);
                            EXPECT_EQ(mask.at({0, h, qb, diag}), 1);
                            if (causal) {
                                for (int64_t kb = diag + 1; kb < nkb; ++kb) EXPECT_EQ(mask.at({0, h, qb, kb}), 0);
                            }
                        }
                }
}

TEST(BlockSparseAttention, RejectsBadArguments) {
    HostTensor q(HEED_F32, {1, 2, 100, 64}), k(HEED_F32, {1, 2, 100, 64}), v(HEED_F32, {1, 2, 100, 64}),
        o(HEED_F32, {1, 2, 100, 64}), mask(HEED_U8, {1, 2, 2, 2});
    heed_tensor tq = q.desc(), tk = k.desc(), tv = v.desc(), to = o.desc(), tm = mask.desc();
    EXPECT_TRUE(fails_with(heed_block_sparse_attention_forward(&tq, &tk, &tv, &tm, 32, 0, 0, &to, nullptr), HEED_ERR_INVALID_ARGUMENT, "block"));
    EXPECT_TRUE(fails_with(heed_block_sparse_attention_forward(&tq, &tk, &tv, nullptr, 64, 0, 0, &to, nullptr), HEED_ERR_INVALID_ARGUMENT, "mask"));
    heed_tensor bad = tm;
    bad.shape[3] = 1;
    EXPECT_TRUE(fails_with(heed_block_sparse_attention_forward(&tq, &tk, &tv, &bad, 64, 0, 0, &to, nullptr), HEED_ERR_INVALID_ARGUMENT, "mask: shape[3]"));
    EXPECT_TRUE(fails_with(heed_block_sparse_attention_forward(&tq, &tk, &tv, &tm, 128, 0, 0, &to, nullptr), HEED_ERR_INVALID_ARGUMENT, "mask: shape[2]"));
    bad = tm;
    bad.dtype = HEED_I32;
    EXPECT_TRUE(fails_with(heed_block_sparse_attention_forward(&tq, &tk, &tv, &bad, 64, 0, 0, &to, nullptr), HEED_ERR_INVALID_ARGUMENT, "mask: dtype"));
    EXPECT_TRUE(fails_with(heed_block_mask_estimate(&tq, &tk, 64, 0.0f, 0, 0, &tm), HEED_ERR_INVALID_ARGUMENT, "coverage"));
    EXPECT_TRUE(fails_with(heed_block_mask_estimate(&tq, &tk, 64, 1.5f, 0, 0, &tm), HEED_ERR_INVALID_ARGUMENT, "coverage"));
    EXPECT_TRUE(fails_with(heed_block_mask_estimate(&tq, &tk, 100, 0.9f, 0, 0, &tm), HEED_ERR_INVALID_ARGUMENT, "block"));
    EXPECT_TRUE(fails_with(heed_block_mask_estimate(&tq, &tk, 64, 0.9f, 0, 0, nullptr), HEED_ERR_INVALID_ARGUMENT, "mask"));
    EXPECT_EQ(heed_block_mask_estimate(&tq, &tk, 64, 0.9f, 0, 0, &tm), HEED_OK) << heed_last_error();
    EXPECT_EQ(heed_block_sparse_attention_forward(&tq, &tk, &tv, &tm, 64, 0, 0, &to, nullptr), HEED_OK) << heed_last_error();
}
