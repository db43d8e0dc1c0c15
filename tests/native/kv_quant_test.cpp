// kv_quant_test.cpp - heed_quant_kv_sizes, heed_kv_quantize and heed_kv_dequantize: the
// documented layout read back by hand, the scale/2 error bound for every element, salient
// tokens exact to fp16, constant groups, partial last groups, poisoned outputs, the fast path
// against the reference path, and rejected arguments.
#include <gtest/gtest.h>

#include "kernel_reference.hpp"

using namespace heed_test;

namespace {

struct QuantCase {
    int64_t B, Hkv, N, d, dv;
    int bits, group;
    double salient_fraction;  // 0: no mask
    bool mask_per_batch = false;
};

struct Quantized {
    HostTensor k, v, mask;
    HostCache cache;
    int64_t S = 0;
};

Quantized quantize(const QuantCase &c, std::mt19937_64 &rng) {
    Quantized r;
    r.k = HostTensor(HEED_F32, {c.B, c.Hkv, c.N, c.d}, 1);  // strided input
    r.v = HostTensor(HEED_F32, {c.B, c.Hkv, c.N, c.dv});
    r.k.fill_normal(rng);
    r.v.fill_normal(rng, 2.0, 0.5);
    // Channel 0 of K is a constant fp16 number (exact), channel 1 a constant that is not (0.1).
    for (int64_t b = 0; b < c.B; ++b)
        for (int64_t h = 0; h < c.Hkv; ++h)
            for (int64_t n = 0; n < c.N; ++n) r.k.set(r.k.offset({b, h, n, 0}), 0.5), r.k.set(r.k.offset({b, h, n, 1}), 0.1);
    // An outlier token: what salient tokens are for.
    if (c.N > 3)
        for (int64_t ch = 2; ch < c.d; ++ch) r.k.set(r.k.offset({0, 0, 3, ch}), 40.0);
    std::bernoulli_distribution pick(c.salient_fraction);
    const heed_tensor *mask = nullptr;
    heed_tensor mt{};
    if (c.salient_fraction > 0) {
        r.mask = c.mask_per_batch ? HostTensor(HEED_U8, {c.B, c.N}) : HostTensor(HEED_U8, {c.N});
        int64_t most = 0;
        for (int64_t b = 0; b < (c.mask_per_batch ? c.B : 1); ++b) {
            int64_t count = 0;
            for (int64_t n = 0; n < c.N; ++n) {
                bool s = pick(rng) || n == 3;
                r.mask.bytes[b * c.N + n] = s ? 7 : 0;  // any nonzero marks a salient token
                count += s;
            }
            most = std::max(most, count);
        }
        r.S = most;
        mt = r.mask.desc();
        mask = &mt;
    }
    EXPECT_EQ(r.cache.make(c.B, c.Hkv, c.N, c.d, c.dv, c.bits, c.group, r.S), HEED_OK) << heed_last_error();
    heed_tensor kt = r.k.desc(), vt = r.v.desc();
    EXPECT_EQ(heed_kv_quantize(&kt, &vt, mask, &r.cache.c), HEED_OK) << heed_last_error();
    return r;
}

bool salient(const Quantized &r, const QuantCase &c, int64_t b, int64_t n) {
    if (c.salient_fraction <= 0) return false;
    return r.mask.bytes[(c.mask_per_batch ? b * c.N : 0) + n] != 0;
}

// Every element: rebuilt from the documented layout, equal to heed_kv_dequantize's answer, and
// within scale/2 of the input (salient: exactly fp16 of the input).
void check_round_trip(const QuantCase &c) {
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE("seed " + std::to_string(seed) + " bits " + std::to_string(c.bits) + " g " + std::to_string(c.group) +
                 " N " + std::to_string(c.N) + " d " + std::to_string(c.d));
    std::mt19937_64 rng(seed);
    Quantized r = quantize(c, rng);
    const HostCache &q = r.cache;
    HostTensor kd(HEED_F32, {c.B, c.Hkv, c.N, c.d}), vd(HEED_F32, {c.B, c.Hkv, c.N, c.dv});
    kd.poison();
    vd.poison();
    heed_tensor kdt = kd.desc(), vdt = vd.desc();
    ASSERT_EQ(heed_kv_dequantize(&r.cache.c, &kdt, &vdt), HEED_OK) << heed_last_error();
    ASSERT_TRUE(kd.all_finite() && vd.all_finite()) << "a dequantized element was not written";

    const int qmax = (1 << c.bits) - 1;
    const int64_t KG = (c.N + c.group - 1) / c.group, VG = (c.dv + c.group - 1) / c.group;
    const double f32 = std::ldexp(1.0, -22);  // two f32 roundings (the division and the fma)
    int64_t bad = 0;
    for (int64_t b = 0; b < c.B; ++b) {
        int64_t expect_slot = 0;
        for (int64_t n = 0; n < c.N; ++n) {
            const bool sal = salient(r, c, b, n);
            ASSERT_EQ(q.i32(T_SLOT)[b * c.N + n], sal ? expect_slot : -1);
            expect_slot += sal;
        }
        ASSERT_EQ(q.i32(T_COUNT)[b], expect_slot);
        for (int64_t h = 0; h < c.Hkv; ++h) {
            const int64_t pair = b * c.Hkv + h;
            for (int64_t n = 0; n < c.N; ++n) {
                const int32_t slot = q.i32(T_SLOT)[b * c.N + n];
                const uint8_t *krow = q.mem[T_KCODES].data() + (pair * c.N + n) * c.d * c.bits / 8;
                const uint8_t *vrow = q.mem[T_VCODES].data() + (pair * c.N + n) * c.dv * c.bits / 8;
                for (int64_t ch = 0; ch < c.d; ++ch) {
                    const double x = r.k.at({b, h, n, ch}), got = kd.at({b, h, n, ch});
                    if (slot >= 0) {
                        const float want = heed::half_to_float(q.half(T_SK)[(pair * r.S + slot) * c.d + ch]);
                        bad += got != want || want != heed::half_to_float(heed::float_to_half((float)x));
                        continue;
                    }
                    const int64_t gi = (pair * KG + n / c.group) * c.d + ch;
                    const float s = heed::half_to_float(q.half(T_KSCALE)[gi]), z = heed::half_to_float(q.half(T_KZERO)[gi]);
                    const float mine = std::fma((float)code_at(krow, ch, c.bits), s, z);
                    bad += got != mine;  // the layout is as documented
                    bad += std::fabs(got - x) > s / 2 + f32 * (std::fabs(x) + std::fabs(z) + qmax * s);
                    bad += code_at(krow, ch, c.bits) > qmax;
                    if (ch == 0) bad += s != 0.0f || got != 0.5;  // constant fp16 group: exact
                }
                for (int64_t ch = 0; ch < c.dv; ++ch) {
                    const double x = r.v.at({b, h, n, ch}), got = vd.at({b, h, n, ch});
                    if (slot >= 0) {
                        bad += got != heed::half_to_float(q.half(T_SV)[(pair * r.S + slot) * c.dv + ch]);
                        bad += got != heed::half_to_float(heed::float_to_half((float)x));
                        continue;
                    }
                    const int64_t gi = (pair * c.N + n) * VG + ch / c.group;
                    const float s = heed::half_to_float(q.half(T_VSCALE)[gi]), z = heed::half_to_float(q.half(T_VZERO)[gi]);
                    bad += got != std::fma((float)code_at(vrow, ch, c.bits), s, z);
                    bad += std::fabs(got - x) > s / 2 + f32 * (std::fabs(x) + std::fabs(z) + qmax * s);
                }
            }
            // Unused salient rows are zero, not left as they were.
            for (int64_t s = q.i32(T_COUNT)[b]; s < r.S; ++s)
                for (int64_t ch = 0; ch < c.d; ++ch) bad += q.half(T_SK)[(pair * r.S + s) * c.d + ch] != 0;
        }
    }
    EXPECT_EQ(bad, 0);
    // Every scale and zero was written (poisoned with NaN before).
    for (int t : {T_KSCALE, T_KZERO, T_VSCALE, T_VZERO})
        for (size_t i = 0; i < q.bytes[t] / 2; ++i) ASSERT_TRUE(std::isfinite(heed::half_to_float(q.half(t)[i])));
}

}  // namespace

TEST(KvQuant, SizesDescribeThePackedLayout) {
    heed_quant_kv c{};
    size_t bytes[HEED_QUANT_KV_TENSORS], total = 0;
    ASSERT_EQ(heed_quant_kv_sizes(2, 3, 100, 64, 32, 4, 32, 5, &c, bytes, &total), HEED_OK) << heed_last_error();
    EXPECT_EQ(c.bits, 4);
    EXPECT_EQ(c.k_codes.dtype, HEED_U4);
    EXPECT_EQ(bytes[0], 2u * 3 * 100 * 64 / 2);
    EXPECT_EQ(c.k_scale.shape[2], 4);  // ceil(100 / 32): the last group holds 4 tokens
    EXPECT_EQ(bytes[1], 2u * 3 * 4 * 64 * 2);
    EXPECT_EQ(c.v_scale.shape[3], 1);  // ceil(32 / 32)
    EXPECT_EQ(bytes[6], 2u * 100 * 4);
    EXPECT_EQ(bytes[8], 2u * 3 * 5 * 64 * 2);
    size_t sum = 0;
    for (size_t b : bytes) sum += b;
    EXPECT_EQ(total, sum);
    EXPECT_EQ(c.k_codes.data, nullptr);
    ASSERT_EQ(heed_quant_kv_sizes(1, 1, 10, 8, 8, 2, 128, 0, &c, nullptr, nullptr), HEED_OK);
    EXPECT_EQ(c.v_codes.dtype, HEED_U2);

    EXPECT_EQ(heed_quant_kv_sizes(1, 1, 10, 8, 8, 3, 32, 0, &c, nullptr, nullptr), HEED_ERR_INVALID_ARGUMENT);
    EXPECT_TRUE(message_has("bits"));
    EXPECT_EQ(heed_quant_kv_sizes(1, 1, 10, 8, 8, 4, 48, 0, &c, nullptr, nullptr), HEED_ERR_INVALID_ARGUMENT);
    EXPECT_TRUE(message_has("group_size"));
    EXPECT_EQ(heed_quant_kv_sizes(1, 1, 10, 6, 8, 2, 32, 0, &c, nullptr, nullptr), HEED_ERR_INVALID_ARGUMENT);
    EXPECT_TRUE(message_has("multiples of 4"));
    EXPECT_EQ(heed_quant_kv_sizes(1, 1, 10, 8, 8, 8, 32, 11, &c, nullptr, nullptr), HEED_ERR_INVALID_ARGUMENT);
    EXPECT_TRUE(message_has("salient_capacity"));
    EXPECT_EQ(heed_quant_kv_sizes(0, 1, 10, 8, 8, 8, 32, 0, &c, nullptr, nullptr), HEED_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(heed_quant_kv_sizes(1, 1, 10, 8, 8, 8, 32, 0, nullptr, nullptr, nullptr), HEED_ERR_INVALID_ARGUMENT);
}

TEST(KvQuant, ErrorBoundAndLayoutForEveryWidthAndGroup) {
    for (int bits : {8, 4, 2})
        for (int group : {32, 64, 128}) {
            check_round_trip({1, 2, 77, 64, 64, bits, group, 0.0});             // partial last token group
            check_round_trip({2, 1, 130, 128, 96, bits, group, 0.05, true});  // salient, partial channel group
        }
}

TEST(KvQuant, SingleTokenAndSharedMask) {
    check_round_trip({1, 1, 1, 64, 64, 4, 64, 0.0});
    check_round_trip({3, 2, 40, 64, 64, 2, 32, 0.2, false});
    check_round_trip({1, 1, 5, 8, 8, 8, 32, 1.0});  // every token salient
}

TEST(KvQuant, FastPathMatchesReferenceBitForBit) {
    const uint64_t seed = fresh_seed();
    QuantCase c{2, 4, 300, 128, 128, 4, 64, 0.03, true};
    std::mt19937_64 a(seed), b(seed);
    Quantized fast = quantize(c, a);
    Quantized ref;
    {
        CpuPath path(1);
        ref = quantize(c, b);
    }
    for (int t = 0; t < HEED_QUANT_KV_TENSORS; ++t) EXPECT_EQ(fast.cache.mem[t], ref.cache.mem[t]) << "tensor " << t;
}

TEST(KvQuant, RejectsBadArguments) {
    std::mt19937_64 rng(fresh_seed());
    QuantCase c{1, 2, 50, 64, 64, 4, 32, 0.1};
    Quantized r = quantize(c, rng);
    heed_tensor k = r.k.desc(), v = r.v.desc(), m = r.mask.desc();
    ASSERT_EQ(heed_kv_quantize(&k, &v, &m, &r.cache.c), HEED_OK) << heed_last_error();

    EXPECT_EQ(heed_kv_quantize(&k, &v, &m, nullptr), HEED_ERR_INVALID_ARGUMENT);
    EXPECT_TRUE(message_has("cache"));
    heed_tensor bad = k;
    bad.shape[2] = 49;
    EXPECT_EQ(heed_kv_quantize(&bad, &v, &m, &r.cache.c), HEED_ERR_INVALID_ARGUMENT);
    EXPECT_TRUE(message_has("k: shape[2]"));
    bad = m;
    bad.dtype = HEED_F32;
    EXPECT_EQ(heed_kv_quantize(&k, &v, &bad, &r.cache.c), HEED_ERR_INVALID_ARGUMENT);
    EXPECT_TRUE(message_has("salient_mask"));
    // More salient tokens than the capacity.
    HostTensor all(HEED_U8, {c.N});
    std::fill(all.bytes.begin(), all.bytes.end(), 1);
    heed_tensor at = all.desc();
    EXPECT_EQ(heed_kv_quantize(&k, &v, &at, &r.cache.c), HEED_ERR_INVALID_ARGUMENT);
    EXPECT_TRUE(message_has("salient capacity"));

    heed_quant_kv broken = r.cache.c;
    broken.k_scale.shape[2] = 1;
    EXPECT_EQ(heed_kv_quantize(&k, &v, &m, &broken), HEED_ERR_INVALID_ARGUMENT);
    EXPECT_TRUE(message_has("cache.k_scale"));
    broken = r.cache.c;
    broken.bits = 5;
    EXPECT_EQ(heed_kv_dequantize(&broken, &k, &v), HEED_ERR_INVALID_ARGUMENT);
    EXPECT_TRUE(message_has("bits"));
    broken = r.cache.c;
    broken.v_zero.data = nullptr;
    EXPECT_EQ(heed_kv_dequantize(&broken, &k, &v), HEED_ERR_INVALID_ARGUMENT);
    EXPECT_TRUE(message_has("cache.v_zero"));
    broken = r.cache.c;
    broken.v_codes.dtype = HEED_U8;
    EXPECT_EQ(heed_kv_dequantize(&broken, &k, &v), HEED_ERR_INVALID_ARGUMENT);
    EXPECT_TRUE(message_has("cache.v_codes"));
    broken = r.cache.c;
    broken.salient_slot.strides[0] = 1, broken.salient_slot.strides[1] = 2;
    EXPECT_EQ(heed_kv_dequantize(&broken, &k, &v), HEED_ERR_INVALID_ARGUMENT);
    EXPECT_TRUE(message_has("contiguous"));
    bad = v;
    bad.dtype = HEED_I8;
    EXPECT_EQ(heed_kv_dequantize(&r.cache.c, nullptr, &bad), HEED_ERR_INVALID_ARGUMENT);
    EXPECT_TRUE(message_has("v_out"));
    EXPECT_EQ(heed_kv_dequantize(&r.cache.c, nullptr, nullptr), HEED_OK);
}
