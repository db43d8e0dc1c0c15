// attention_aggregate_test.cpp - heed_attention_aggregate on the CPU against float64.
#include <gtest/gtest.h>

#include "kernel_reference.hpp"

using namespace heed_test;

namespace {

struct AggCase {
    int32_t dtype;
    int64_t n_q, n_k, H, Hkv, d;
    bool causal;
    int64_t pad = 0;
};

// Keys at positions 10..10+n_k-1; query positions drawn from [0, n_k + 12], so some rows see
// no key at all (and must add nothing) and others see every key.
void check_case(const AggCase &c, std::mt19937 &rng, bool per_head = true) {
    SCOPED_TRACE(std::string(dtype_label(c.dtype)) + " n_q" + std::to_string(c.n_q) + " n_k" + std::to_string(c.n_k) +
                 " H" + std::to_string(c.H) + "/" + std::to_string(c.Hkv) + " d" + std::to_string(c.d) +
                 (c.causal ? " causal" : ""));
    HostTensor q(c.dtype, {c.n_q, c.H, c.d}, c.pad), k(c.dtype, {c.n_k, c.Hkv, c.d}, c.pad);
    q.fill_normal(rng);
    k.fill_normal(rng);
    HostTensor kpos = positions(c.n_k, 10), qpos(HEED_I32, {c.n_q});
    std::uniform_int_distribution<int> pick(0, (int)c.n_k + 12);
    for (int64_t i = 0; i < c.n_q; ++i) qpos.set(i, pick(rng));
    HostTensor out(HEED_F32, {c.n_k}), heads(HEED_F32, {c.H, c.n_k});
    out.poison();
    heads.poison();
    heed_tensor tq = q.desc(), tqp = qpos.desc(), tk = k.desc(), tkp = kpos.desc(), to = out.desc(), th = heads.desc();
    ASSERT_EQ(heed_attention_aggregate(&tq, &tqp, &tk, &tkp, 0.0f, c.causal, &to, per_head ? &th : nullptr), HEED_OK)
        << heed_last_error();
    AggregateRef ref = aggregate_reference(q, qpos, k, kpos, 1.0 / std::sqrt((double)c.d), c.causal);
    EXPECT_LE(relative_error(out, ref.total), 2e-5);
    if (per_head) {
        EXPECT_LE(relative_error(heads, ref.per_head), 2e-5);
    }
}

}  // namespace

TEST(AttentionAggregate, MatchesFloat64Reference) {
    std::mt19937 rng(42);
    const int64_t sizes[][2] = {{1, 1}, {5, 77}, {33, 130}};
    for (int32_t dt : {HEED_F32, HEED_F16, HEED_BF16})
        for (int64_t d : {64, 128})
            for (int64_t hkv : {8, 2, 1})
                for (bool causal : {true, false})
                    for (auto &s : sizes) check_case({dt, s[0], s[1], 8, hkv, d, causal}, rng);
}

TEST(AttentionAggregate, OddHeadSizesStridesAndNoPerHead) {
    std::mt19937 rng(3);
    check_case({HEED_F32, 7, 50, 4, 4, 1, true}, rng);
    check_case({HEED_F16, 9, 65, 4, 1, 72, true, 3}, rng);
    check_case({HEED_BF16, 3, 200, 6, 3, 64, false}, rng, false);
}

TEST(AttentionAggregate, MassPerRowIsOneAndBlindRowsAddNothing) {
    std::mt19937 rng(8);
    const int64_t n_q = 6, n_k = 40, H = 4, d = 64;
    HostTensor q(HEED_F32, {n_q, H, d}), k(HEED_F32, {n_k, 2, d});
    q.fill_normal(rng);
    k.fill_normal(rng);
    HostTensor kpos = positions(n_k, 100), qpos = positions(n_q, 95);  // rows at 95..99 see nothing, 100 sees one key
    HostTensor out(HEED_F32, {n_k});
    out.poison();
    heed_tensor tq = q.desc(), tqp = qpos.desc(), tk = k.desc(), tkp = kpos.desc(), to = out.desc();
    ASSERT_EQ(heed_attention_aggregate(&tq, &tqp, &tk, &tkp, 0.0f, 1, &to, nullptr), HEED_OK);
    EXPECT_NEAR(out.at({0}), (double)H, 1e-5);  // one row, every head, all mass on key 0
    for (int64_t j = 1; j < n_k; ++j) EXPECT_EQ(out.at({j}), 0.0) << j;
    ASSERT_EQ(heed_attention_aggregate(&tq, &tqp, &tk, &tkp, 0.0f, 0, &to, nullptr), HEED_OK);
    double sum = 0;
    for (int64_t j = 0; j < n_k; ++j) sum += out.at({j});
    EXPECT_NEAR(sum, (double)(n_q * H), 1e-4);
}

TEST(AttentionAggregate, FastPathMatchesReferencePath) {
    std::mt19937 rng(17);
    const int64_t n_q = 24, n_k = 300, H = 8, d = 128;
    HostTensor q(HEED_BF16, {n_q, H, d}), k(HEED_BF16, {n_k, 2, d});
    q.fill_normal(rng);
    k.fill_normal(rng);
    HostTensor kpos = positions(n_k), qpos = positions(n_q, n_k - n_q);
    HostTensor a(HEED_F32, {H, n_k}), b(HEED_F32, {H, n_k}), ta_(HEED_F32, {n_k}), tb_(HEED_F32, {n_k});
    heed_tensor tq = q.desc(), tqp = qpos.desc(), tk = k.desc(), tkp = kpos.desc(), t1 = ta_.desc(), t2 = tb_.desc(),
                h1 = a.desc(), h2 = b.desc();
    {
        CpuPath reference(1, 0);
        ASSERT_EQ(heed_attention_aggregate(&tq, &tqp, &tk, &tkp, 0.0f, 1, &t1, &h1), HEED_OK);
    }
    {
        CpuPath fast(0, 3);
        ASSERT_EQ(heed_attention_aggregate(&tq, &tqp, &tk, &tkp, 0.0f, 1, &t2, &h2), HEED_OK);
    }
    std::vector<double> r(a.count());
    for (int64_t i = 0; i < a.count(); ++i) r[i] = a.flat(i);
    EXPECT_LE(relative_error(b, r), 1e-5);
}

TEST(AttentionAggregate, RejectsBadArguments) {
    HostTensor q(HEED_F32, {4, 8, 64}), k(HEED_F32, {10, 2, 64}), out(HEED_F32, {10}), heads(HEED_F32, {8, 10});
    HostTensor qpos = positions(4), kpos = positions(10);
    heed_tensor tq = q.desc(), tqp = qpos.desc(), tk = k.desc(), tkp = kpos.desc(), to = out.desc(), th = heads.desc();
    EXPECT_TRUE(fails_with(heed_attention_aggregate(nullptr, &tqp, &tk, &tkp, 0, 1, &to, &th), HEED_ERR_INVALID_ARGUMENT, "q"));
    EXPECT_TRUE(fails_with(heed_attention_aggregate(&tq, nullptr, &tk, &tkp, 0, 1, &to, &th), HEED_ERR_INVALID_ARGUMENT, "q_pos"));
    EXPECT_TRUE(fails_with(heed_attention_aggregate(&tq, &tqp, &tk, &tkp, 0, 1, nullptr, &th), HEED_ERR_INVALID_ARGUMENT, "out"));
    heed_tensor bad = tk;
    bad.dtype = HEED_F16;
    EXPECT_TRUE(fails_with(heed_attention_aggregate(&tq, &tqp, &bad, &tkp, 0, 1, &to, &th), HEED_ERR_INVALID_ARGUMENT, "k: dtype"));
    bad = tqp;
    bad.dtype = HEED_F32;
    EXPECT_TRUE(fails_with(heed_attention_aggregate(&tq, &bad, &tk, &tkp, 0, 1, &to, &th), HEED_ERR_INVALID_ARGUMENT, "q_pos: dtype"));
    bad = tkp;
    bad.shape[0] = 9;
    EXPECT_TRUE(fails_with(heed_attention_aggregate(&tq, &tqp, &tk, &bad, 0, 1, &to, &th), HEED_ERR_INVALID_ARGUMENT, "k_pos: shape[0]"));
    bad = tk;
    bad.shape[1] = 3;
    EXPECT_TRUE(fails_with(heed_attention_aggregate(&tq, &tqp, &bad, &tkp, 0, 1, &to, &th), HEED_ERR_INVALID_ARGUMENT, "multiple"));
    bad = tk;
    bad.shape[2] = 32;
    EXPECT_TRUE(fails_with(heed_attention_aggregate(&tq, &tqp, &bad, &tkp, 0, 1, &to, &th), HEED_ERR_INVALID_ARGUMENT, "k: shape[2]"));
    bad = th;
    bad.shape[0] = 2;
    EXPECT_TRUE(fails_with(heed_attention_aggregate(&tq, &tqp, &tk, &tkp, 0, 1, &to, &bad), HEED_ERR_INVALID_ARGUMENT, "out_per_head"));
    bad = to;
    bad.dtype = HEED_F16;
    EXPECT_TRUE(fails_with(heed_attention_aggregate(&tq, &tqp, &tk, &tkp, 0, 1, &bad, &th), HEED_ERR_INVALID_ARGUMENT, "out: dtype"));
    EXPECT_TRUE(fails_with(heed_attention_aggregate(&tq, &tqp, &tk, &tkp, INFINITY, 1, &to, &th), HEED_ERR_INVALID_ARGUMENT, "scale"));
    EXPECT_EQ(heed_attention_aggregate(&tq, &tqp, &tk, &tkp, 0.125f, 1, &to, &th), HEED_OK);
}
