// flash_attention_test.cpp - heed_flash_attention_forward on the CPU against float64.
#include <gtest/gtest.h>

#include "kernel_reference.hpp"

using namespace heed_test;

namespace {

struct FlashCase {
    int32_t dtype;
    int64_t B, H, Hkv, Nq, Nk, d;
    bool causal;
    int64_t pad = 0;
};

std::string label(const FlashCase &c) {
    return std::string(dtype_label(c.dtype)) + " B" + std::to_string(c.B) + " H" + std::to_string(c.H) + "/" +
           std::to_string(c.Hkv) + " Nq" + std::to_string(c.Nq) + " Nk" + std::to_string(c.Nk) + " d" +
           std::to_string(c.d) + (c.causal ? " causal" : "") + (c.pad ? " strided" : "");
}

// Runs one case on fresh random inputs with poisoned outputs and checks O and LSE.
void check_case(const FlashCase &c, std::mt19937 &rng) {
    SCOPED_TRACE(label(c));
    HostTensor q(c.dtype, {c.B, c.H, c.Nq, c.d}, c.pad), k(c.dtype, {c.B, c.Hkv, c.Nk, c.d}, c.pad),
        v(c.dtype, {c.B, c.Hkv, c.Nk, c.d}, c.pad), o(c.dtype, {c.B, c.H, c.Nq, c.d}, c.pad), lse(HEED_F32, {c.B, c.H, c.Nq});
    q.fill_normal(rng);
    k.fill_normal(rng);
    v.fill_normal(rng);
    o.poison();
    lse.poison();
    const double scale = 1.0 / std::sqrt((double)c.d);
    heed_tensor tq = q.desc(), tk = k.desc(), tv = v.desc(), to = o.desc(), tl = lse.desc();
    ASSERT_EQ(heed_flash_attention_forward(&tq, &tk, &tv, 0.0f, c.causal, &to, &tl), HEED_OK) << heed_last_error();
    AttentionRef ref = attention_reference(q, k, v, nullptr, 0, scale, c.causal);
    EXPECT_LE(relative_error(o, ref.o), tolerance(c.dtype));
    EXPECT_LE(relative_error(lse, ref.lse), 2e-5);
}

}  // namespace

TEST(FlashAttention, MatchesFloat64Reference) {
    std::mt19937 rng(1234);
    const int64_t sizes[][2] = {{1, 1}, {37, 70}, {130, 67}};
    for (int32_t dt : {HEED_F32, HEED_F16, HEED_BF16})
        for (int64_t d : {64, 128})
            for (int64_t hkv : {8, 2, 1})  // GQA ratios 1, 4, 8
                for (bool causal : {false, true})
                    for (auto &s : sizes) check_case({dt, 1, 8, hkv, s[0], s[1], d, causal}, rng);
}

TEST(FlashAttention, AnyHeadSizeAndBatchOnCpu) {
    std::mt19937 rng(7);
    for (int64_t d : {1, 40, 80})
        check_case({HEED_F32, 2, 4, 2, 19, 23, d, true}, rng);
    check_case({HEED_BF16, 3, 2, 1, 65, 129, 64, false}, rng);
}

TEST(FlashAttention, StridedTensors) {
    std::mt19937 rng(11);
    check_case({HEED_F32, 2, 4, 2, 33, 45, 64, true, 5}, rng);
    check_case({HEED_F16, 1, 4, 4, 20, 70, 128, false, 8}, rng);
}

TEST(FlashAttention, FastPathMatchesReferencePath) {
    std::mt19937 rng(99);
    for (int32_t dt : {HEED_F32, HEED_BF16}) {
        HostTensor q(dt, {2, 8, 77, 64}), k(dt, {2, 2, 150, 64}), v(dt, {2, 2, 150, 64});
        q.fill_normal(rng);
        k.fill_normal(rng);
        v.fill_normal(rng);
        HostTensor of_ref(dt, {2, 8, 77, 64}), of_fast(dt, {2, 8, 77, 64});
        heed_tensor tq = q.desc(), tk = k.desc(), tv = v.desc(), t1 = of_ref.desc(), t2 = of_fast.desc();
        {
            CpuPath reference(1, 0);
            ASSERT_EQ(heed_flash_attention_forward(&tq, &tk, &tv, 0.0f, 1, &t1, nullptr), HEED_OK) << heed_last_error();
        }
        {
            CpuPath fast(0, 3);
            ASSERT_EQ(heed_flash_attention_forward(&tq, &tk, &tv, 0.0f, 1, &t2, nullptr), HEED_OK) << heed_last_error();
        }
        std::vector<double> r(of_ref.count());
        for (int64_t i = 0; i < of_ref.count(); ++i) r[i] = of_ref.flat(i);
        EXPECT_LE(relative_error(of_fast, r), dt == HEED_F32 ? 1e-5 : 8e-3) << dtype_label(dt);
    }
}

TEST(FlashAttention, CausalAlignsTopLeftWhenNqExceedsNk) {
    // Row i sees keys 0..min(i, Nk-1): rows past Nk see every key (as PyTorch SDPA is_causal).
    std::mt19937 rng(5);
    check_case({HEED_F32, 1, 2, 1, 90, 40, 64, true}, rng);
}

TEST(FlashAttention, RejectsBadArguments) {
    HostTensor q(HEED_F32, {1, 4, 8, 64}), k(HEED_F32, {1, 2, 8, 64}), v(HEED_F32, {1, 2, 8, 64}), o(HEED_F32, {1, 4, 8, 64}),
        lse(HEED_F32, {1, 4, 8});
    heed_tensor tq = q.desc(), tk = k.desc(), tv = v.desc(), to = o.desc(), tl = lse.desc();
    EXPECT_TRUE(fails_with(heed_flash_attention_forward(nullptr, &tk, &tv, 0, 0, &to, &tl), HEED_ERR_INVALID_ARGUMENT, "q"));
    EXPECT_TRUE(fails_with(heed_flash_attention_forward(&tq, &tk, &tv, 0, 0, nullptr, &tl), HEED_ERR_INVALID_ARGUMENT, "o"));
    heed_tensor bad = tk;
    bad.data = nullptr;
    EXPECT_TRUE(fails_with(heed_flash_attention_forward(&tq, &bad, &tv, 0, 0, &to, &tl), HEED_ERR_INVALID_ARGUMENT, "k: data is null"));
    bad = tv;
    bad.dtype = HEED_F16;
    EXPECT_TRUE(fails_with(heed_flash_attention_forward(&tq, &tk, &bad, 0, 0, &to, &tl), HEED_ERR_INVALID_ARGUMENT, "dtype"));
    bad = tq;
    bad.dtype = HEED_I32;
    EXPECT_TRUE(fails_with(heed_flash_attention_forward(&bad, &tk, &tv, 0, 0, &to, &tl), HEED_ERR_INVALID_ARGUMENT, "q: dtype"));
    bad = tq;
    bad.ndim = 3;
    EXPECT_TRUE(fails_with(heed_flash_attention_forward(&bad, &tk, &tv, 0, 0, &to, &tl), HEED_ERR_INVALID_ARGUMENT, "q: expected 4"));
    bad = tk;
    bad.shape[3] = 32;
    EXPECT_TRUE(fails_with(heed_flash_attention_forward(&tq, &bad, &tv, 0, 0, &to, &tl), HEED_ERR_INVALID_ARGUMENT, "k: shape[3]"));
    bad = tv;
    bad.shape[2] = 7;
    EXPECT_TRUE(fails_with(heed_flash_attention_forward(&tq, &tk, &bad, 0, 0, &to, &tl), HEED_ERR_INVALID_ARGUMENT, "v: shape[2]"));
    bad = tk;
    bad.shape[1] = 3;  // 4 query heads over 3 kv heads
    heed_tensor bad_v = tv;
    bad_v.shape[1] = 3;
    EXPECT_TRUE(fails_with(heed_flash_attention_forward(&tq, &bad, &bad_v, 0, 0, &to, &tl), HEED_ERR_INVALID_ARGUMENT, "multiple"));
    bad = tl;
    bad.shape[2] = 9;
    EXPECT_TRUE(fails_with(heed_flash_attention_forward(&tq, &tk, &tv, 0, 0, &to, &bad), HEED_ERR_INVALID_ARGUMENT, "lse: shape[2]"));
    bad = tq;
    bad.shape[0] = 0;
    EXPECT_TRUE(fails_with(heed_flash_attention_forward(&bad, &tk, &tv, 0, 0, &to, &tl), HEED_ERR_INVALID_ARGUMENT, "q: shape[0]"));
    bad = tq;
    bad.strides[0] = -1;
    EXPECT_TRUE(fails_with(heed_flash_attention_forward(&bad, &tk, &tv, 0, 0, &to, &tl), HEED_ERR_INVALID_ARGUMENT, "q: strides"));
    EXPECT_TRUE(fails_with(heed_flash_attention_forward(&tq, &tk, &tv, -1.0f, 0, &to, &tl), HEED_ERR_INVALID_ARGUMENT, "scale"));
    EXPECT_TRUE(fails_with(heed_flash_attention_forward(&tq, &tk, &tv, NAN, 0, &to, &tl), HEED_ERR_INVALID_ARGUMENT, "scale"));
    // The same call with good arguments succeeds and clears the message.
    EXPECT_EQ(heed_flash_attention_forward(&tq, &tk, &tv, 0, 0, &to, nullptr), HEED_OK);
    EXPECT_STREQ(heed_last_error(), "");
}
