// quant_decode_test.cpp - heed_quant_decode_attention against float64 attention over the
// dequantized K/V (tight) and over the original K/V (loose, by bit width): GQA 1/4/8, d 64 and
// 128, 1..8 query rows, causal or not, splits, salient tokens, poisoned outputs, the fast path
// against the reference path, and rejected arguments.
#include <gtest/gtest.h>

#include "kernel_reference.hpp"

using namespace heed_test;

namespace {

struct DecodeCase {
    int64_t B, H, Hkv, N, d, nq;
    int bits, group;
    bool causal;
    int splits;
    double salient_fraction = 0.0;
    int32_t out_dtype = HEED_F32;
};

struct DecodeRun {
    HostTensor q, k, v, kd, vd, out, mask;
    HostCache cache;
};

DecodeRun prepare(const DecodeCase &c, std::mt19937_64 &rng) {
    DecodeRun r;
    r.q = HostTensor(HEED_F32, {c.B, c.H, c.nq, c.d});
    r.k = HostTensor(HEED_F32, {c.B, c.Hkv, c.N, c.d});
    r.v = HostTensor(HEED_F32, {c.B, c.Hkv, c.N, c.d});
    r.q.fill_normal(rng, 1.5);
    r.k.fill_normal(rng);
    r.v.fill_normal(rng);
    int64_t S = 0;
    const heed_tensor *mask = nullptr;
    heed_tensor mt{};
    if (c.salient_fraction > 0) {
        r.mask = HostTensor(HEED_U8, {c.N});
        std::bernoulli_distribution pick(c.salient_fraction);
        for (int64_t n = 0; n < c.N; ++n) S += (r.mask.bytes[n] = pick(rng));
        mt = r.mask.desc();
        mask = &mt;
    }
    EXPECT_EQ(r.cache.make(c.B, c.Hkv, c.N, c.d, c.d, c.bits, c.group, S), HEED_OK) << heed_last_error();
    heed_tensor kt = r.k.desc(), vt = r.v.desc();
    EXPECT_EQ(heed_kv_quantize(&kt, &vt, mask, &r.cache.c), HEED_OK) << heed_last_error();
    r.kd = HostTensor(HEED_F32, {c.B, c.Hkv, c.N, c.d});
    r.vd = HostTensor(HEED_F32, {c.B, c.Hkv, c.N, c.d});
    heed_tensor kdt = r.kd.desc(), vdt = r.vd.desc();
    EXPECT_EQ(heed_kv_dequantize(&r.cache.c, &kdt, &vdt), HEED_OK) << heed_last_error();
    r.out = HostTensor(c.out_dtype, {c.B, c.H, c.nq, c.d});
    return r;
}

heed_status decode(const DecodeCase &c, DecodeRun &r) {
    r.out.poison();
    heed_tensor qt = r.q.desc(), ot = r.out.desc();
    return heed_quant_decode_attention(&qt, &r.cache.c, c.causal, 0.0f, c.splits, &ot);
}

// Loose bounds against the original K/V, by width: the RMS output error over the RMS of V
// (unit-variance V, so this is the error in units of a typical value). A single visible token
// returns its V row, whose RMS quantization error is about range/qmax/sqrt(12): 0.005, 0.09, 0.45.
double loose_bound(int bits) { return bits == 8 ? 0.012 : bits == 4 ? 0.15 : 0.6; }

double rms_error(const std::vector<double> &a, const std::vector<double> &b) {
    double s = 0;
    for (size_t i = 0; i < a.size(); ++i) s += (a[i] - b[i]) * (a[i] - b[i]);
    return std::sqrt(s / (double)a.size());
}

void check(const DecodeCase &c) {
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE("seed " + std::to_string(seed) + " B " + std::to_string(c.B) + " H " + std::to_string(c.H) + " Hkv " +
                 std::to_string(c.Hkv) + " N " + std::to_string(c.N) + " d " + std::to_string(c.d) + " nq " +
                 std::to_string(c.nq) + " bits " + std::to_string(c.bits) + " causal " + std::to_string(c.causal) +
                 " splits " + std::to_string(c.splits));
    std::mt19937_64 rng(seed);
    DecodeRun r = prepare(c, rng);
    ASSERT_EQ(decode(c, r), HEED_OK) << heed_last_error();
    ASSERT_TRUE(r.out.all_finite()) << "an output element was not written";
    const double scale = 1.0 / std::sqrt((double)c.d);
    const double tight = c.out_dtype == HEED_F16 ? 1e-3 : 1e-5;
    EXPECT_LT(relative_error(values(r.out), decode_reference(r.q, r.kd, r.vd, c.causal, scale)), tight);
    const std::vector<double> vv = values(r.v), zeros(vv.size(), 0.0);
    EXPECT_LT(rms_error(values(r.out), decode_reference(r.q, r.k, r.v, c.causal, scale)) / rms_error(vv, zeros),
              loose_bound(c.bits));
}

}  // namespace

TEST(QuantDecode, MatchesFloat64OnDequantizedKv) {
    for (int bits : {8, 4, 2})
        for (int64_t d : {64, 128}) {
            check({1, 4, 1, 200, d, 1, bits, 64, false, 0});        // GQA 4, one row
            check({2, 8, 1, 77, d, 3, bits, 32, true, 3});          // GQA 8, causal rows, 3 splits
            check({1, 2, 2, 130, d, 8, bits, 128, true, 0, 0.05});  // GQA 1, 8 rows, salient
        }
}

TEST(QuantDecode, OddSizesSplitsAndHalfOutput) {
    check({1, 1, 1, 1, 64, 1, 4, 32, true, 0});  // one token
    check({1, 4, 1, 8, 64, 8, 4, 32, true, 0});  // as many rows as tokens
    for (int splits : {1, 2, 7, 1000}) check({1, 8, 2, 301, 64, 2, 4, 64, true, splits});
    check({2, 4, 1, 150, 128, 1, 8, 32, false, 0, 0.1, HEED_F16});
}

TEST(QuantDecode, LongContextLooseBoundsByWidth) {
    // Attention over many keys, compared with the unquantized K/V.
    for (int bits : {8, 4, 2}) check({1, 8, 1, 2000, 128, 1, bits, 128, false, 0});
}

TEST(QuantDecode, FastPathMatchesReferencePath) {
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::mt19937_64 rng(seed);
    DecodeCase c{2, 8, 2, 333, 128, 4, 4, 64, true, 0, 0.05};
    DecodeRun r = prepare(c, rng);
    ASSERT_EQ(decode(c, r), HEED_OK) << heed_last_error();
    std::vector<double> fast = values(r.out);
    {
        CpuPath path(1);
        ASSERT_EQ(decode(c, r), HEED_OK) << heed_last_error();
    }
    ASSERT_TRUE(r.out.all_finite());
    // Two fp32 orders of summation: where no AVX2 path exists (arm64), the fast path's serial
    // scalar sums over d = 128 differ from the reference by up to about 1.3e-6 (seen under qemu).
    EXPECT_LT(relative_error(fast, values(r.out)), 4e-6);
}

TEST(QuantDecode, RejectsBadArguments) {
    std::mt19937_64 rng(fresh_seed());
    DecodeCase c{1, 4, 2, 20, 64, 2, 4, 32, true, 0};
    DecodeRun r = prepare(c, rng);
    heed_tensor q = r.q.desc(), o = r.out.desc();
    ASSERT_EQ(heed_quant_decode_attention(&q, &r.cache.c, 1, 0.0f, 0, &o), HEED_OK) << heed_last_error();

    heed_tensor bad = q;
    bad.shape[1] = 3;  // not a multiple of Hkv = 2
    EXPECT_EQ(heed_quant_decode_attention(&bad, &r.cache.c, 1, 0.0f, 0, &o), HEED_ERR_INVALID_ARGUMENT);
    EXPECT_TRUE(message_has("multiple"));
    HostTensor q9(HEED_F32, {1, 4, 9, 64}), o9(HEED_F32, {1, 4, 9, 64});
    heed_tensor q9t = q9.desc(), o9t = o9.desc();
    EXPECT_EQ(heed_quant_decode_attention(&q9t, &r.cache.c, 1, 0.0f, 0, &o9t), HEED_ERR_INVALID_ARGUMENT);
    EXPECT_TRUE(message_has("1..8"));
    bad = q;
    bad.shape[3] = 32;
    EXPECT_EQ(heed_quant_decode_attention(&bad, &r.cache.c, 1, 0.0f, 0, &o), HEED_ERR_INVALID_ARGUMENT);
    EXPECT_TRUE(message_has("q: shape[3]"));
    bad = o;
    bad.dtype = HEED_BF16;
    EXPECT_EQ(heed_quant_decode_attention(&q, &r.cache.c, 1, 0.0f, 0, &bad), HEED_ERR_INVALID_ARGUMENT);
    EXPECT_TRUE(message_has("out"));
    EXPECT_EQ(heed_quant_decode_attention(&q, &r.cache.c, 2, 0.0f, 0, &o), HEED_ERR_INVALID_ARGUMENT);
    EXPECT_TRUE(message_has("causal"));
    EXPECT_EQ(heed_quant_decode_attention(&q, &r.cache.c, 1, INFINITY, 0, &o), HEED_ERR_INVALID_ARGUMENT);
    EXPECT_TRUE(message_has("scale"));
    EXPECT_EQ(heed_quant_decode_attention(&q, &r.cache.c, 1, 0.0f, -1, &o), HEED_ERR_INVALID_ARGUMENT);
    EXPECT_TRUE(message_has("num_splits"));
    EXPECT_EQ(heed_quant_decode_attention(&q, nullptr, 1, 0.0f, 0, &o), HEED_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(heed_quant_decode_attention(nullptr, &r.cache.c, 1, 0.0f, 0, &o), HEED_ERR_INVALID_ARGUMENT);
}
