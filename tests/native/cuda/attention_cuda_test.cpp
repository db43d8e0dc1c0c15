// attention_cuda_test.cpp - the attention kernels on device memory against float64 (Cuda*
// suites: only in CUDA builds, skipped on a machine without a GPU).
#include <gtest/gtest.h>

#include "kernel_reference.hpp"

using namespace heed_test;

namespace {

// A device copy of a HostTensor (same strides); download() copies it back into the host one.
struct DeviceCopy {
    HostTensor *host;
    void *ptr = nullptr;
    explicit DeviceCopy(HostTensor &h) : host(&h) {
        EXPECT_EQ(heed_cuda_malloc(0, h.bytes.size(), &ptr), HEED_OK) << heed_last_error();
        EXPECT_EQ(heed_cuda_memcpy(ptr, h.bytes.data(), h.bytes.size(), 0), HEED_OK) << heed_last_error();
    }
    ~DeviceCopy() { heed_cuda_free(ptr); }
    heed_tensor desc() {
        heed_tensor t = host->desc();
        t.data = ptr;
        return t;
    }
    void download() { ASSERT_EQ(heed_cuda_memcpy(host->bytes.data(), ptr, host->bytes.size(), 1), HEED_OK) << heed_last_error(); }
};

#define REQUIRE_GPU() \
    if (heed_cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device"

double cuda_tolerance(int32_t dt) { return dt == HEED_F16 ? 4e-3 : 1.5e-2; }  // P is rounded to dt for P V

void flash_case(int32_t dt, int64_t B, int64_t H, int64_t Hkv, int64_t Nq, int64_t Nk, int64_t d, bool causal,
                std::mt19937 &rng, const HostTensor *mask = nullptr, int64_t block = 0) {
    SCOPED_TRACE(std::string(dtype_label(dt)) + " B" + std::to_string(B) + " H" + std::to_string(H) + "/" +
                 std::to_string(Hkv) + " Nq" + std::to_string(Nq) + " Nk" + std::to_string(Nk) + " d" +
                 std::to_string(d) + (causal ? " causal" : "") + (mask ? " block " + std::to_string(block) : ""));
    HostTensor q(dt, {B, H, Nq, d}), k(dt, {B, Hkv, Nk, d}), v(dt, {B, Hkv, Nk, d}), o(dt, {B, H, Nq, d}),
        lse(HEED_F32, {B, H, Nq});
    q.fill_normal(rng);
    k.fill_normal(rng);
    v.fill_normal(rng);
    o.poison();
    lse.poison();
    DeviceCopy dq(q), dk(k), dv(v), dout(o), dl(lse);
    heed_tensor tq = dq.desc(), tk = dk.desc(), tv = dv.desc(), to = dout.desc(), tl = dl.desc();
    if (mask) {
        HostTensor m = *mask;
        DeviceCopy dm(m);
        heed_tensor tm = dm.desc();
        ASSERT_EQ(heed_block_sparse_attention_forward(&tq, &tk, &tv, &tm, (int32_t)block, 0.0f, causal, &to, &tl), HEED_OK)
            << heed_last_error();
    } else {
        ASSERT_EQ(heed_flash_attention_forward(&tq, &tk, &tv, 0.0f, causal, &to, &tl), HEED_OK) << heed_last_error();
    }
    dout.download();
    dl.download();
    AttentionRef ref = attention_reference(q, k, v, mask, block, 1.0 / std::sqrt((double)d), causal);
    EXPECT_LE(relative_error(o, ref.o), cuda_tolerance(dt));
    double num = 0, den = 0;
    for (int64_t i = 0; i < lse.count(); ++i) {
        if (std::isinf(ref.lse[i])) {
            ASSERT_TRUE(std::isinf(lse.flat(i)) && lse.flat(i) < 0) << "row " << i;
        } else {
            num += (lse.flat(i) - ref.lse[i]) * (lse.flat(i) - ref.lse[i]);
            den += ref.lse[i] * ref.lse[i];
        }
    }
    EXPECT_LE(std::sqrt(num / std::max(den, 1e-30)), 1e-4);
}

}  // namespace

TEST(CudaFlashAttention, MatchesFloat64Reference) {
    REQUIRE_GPU();
    std::mt19937 rng(31);
    const int64_t sizes[][2] = {{1, 1}, {37, 70}, {130, 67}, {200, 333}};
    for (int32_t dt : {HEED_F16, HEED_BF16})
        for (int64_t d : {64, 128})
            for (int64_t hkv : {8, 2, 1})
                for (bool causal : {false, true})
                    for (auto &s : sizes) flash_case(dt, 1, 8, hkv, s[0], s[1], d, causal, rng);
}

TEST(CudaFlashAttention, SmallCases) {  // the set compute-sanitizer runs
    REQUIRE_GPU();
    std::mt19937 rng(32);
    flash_case(HEED_F16, 1, 2, 1, 37, 70, 64, true, rng);
    flash_case(HEED_BF16, 2, 2, 2, 65, 129, 128, false, rng);
}

TEST(CudaFlashAttention, LongSequences) {
    REQUIRE_GPU();
    std::mt19937 rng(33);
    flash_case(HEED_BF16, 1, 4, 1, 1000, 1000, 128, true, rng);
    flash_case(HEED_F16, 2, 2, 1, 300, 1100, 64, false, rng);
}

TEST(CudaFlashAttention, UnsupportedAndMixedMemory) {
    REQUIRE_GPU();
    HostTensor q32(HEED_F32, {1, 2, 8, 64}), q40(HEED_F16, {1, 2, 8, 40}), k40(HEED_F16, {1, 2, 8, 40}), o40(HEED_F16, {1, 2, 8, 40});
    DeviceCopy a(q32), b(q40), c(k40), e(o40);
    heed_tensor t32 = a.desc(), t40 = b.desc(), k = c.desc(), o = e.desc();
    EXPECT_TRUE(fails_with(heed_flash_attention_forward(&t32, &t32, &t32, 0, 0, &t32, nullptr), HEED_ERR_UNSUPPORTED, "f16 or bf16"));
    EXPECT_TRUE(fails_with(heed_flash_attention_forward(&t40, &k, &k, 0, 0, &o, nullptr), HEED_ERR_UNSUPPORTED, "head size"));
    heed_tensor host_o = o40.desc();
    EXPECT_TRUE(fails_with(heed_flash_attention_forward(&t40, &k, &k, 0, 0, &host_o, nullptr), HEED_ERR_INVALID_ARGUMENT, "different memories"));
}

TEST(CudaBlockSparseAttention, MatchesFloat64Reference) {
    REQUIRE_GPU();
    std::mt19937 rng(34);
    for (int32_t dt : {HEED_F16, HEED_BF16})
        for (int64_t block : {64, 128})
            for (bool causal : {false, true}) {
                const int64_t B = 1, H = 8, Nq = 300, Nk = 333;
                HostTensor mask(HEED_U8, {B, H, (Nq + block - 1) / block, (Nk + block - 1) / block});
                std::bernoulli_distribution keep(0.4);
                for (int64_t i = 0; i < mask.count(); ++i) mask.set(i, keep(rng));
                flash_case(dt, B, H, 2, Nq, Nk, block == 64 ? 128 : 64, causal, rng, &mask, block);
            }
}

TEST(CudaBlockMaskEstimate, MatchesFloat64Reference) {
    REQUIRE_GPU();
    std::mt19937 rng(35);
    for (int32_t dt : {HEED_F32, HEED_BF16})
        for (int64_t block : {64, 128})
            for (bool causal : {false, true}) {
                const int64_t B = 1, H = 4, Hkv = 2, Nq = 1500, Nk = 1400, d = 64;
                HostTensor q(dt, {B, H, Nq, d}), k(dt, {B, Hkv, Nk, d});
                q.fill_normal(rng);
                k.fill_normal(rng);
                for (int64_t j = 0; j < Nk; ++j) k.set(k.offset({0, j % 2, j, 0}), k.at({0, j % 2, j, 0}) + (j % 89) / 15.0);
                for (int64_t i = 0; i < Nq; ++i)
                    for (int64_t h = 0; h < H; ++h) q.set(q.offset({0, h, i, 0}), q.at({0, h, i, 0}) + 3.0);
                const int64_t nqb = (Nq + block - 1) / block, nkb = (Nk + block - 1) / block;
                HostTensor mask(HEED_U8, {B, H, nqb, nkb});
                mask.poison();
                DeviceCopy dq(q), dk(k), dm(mask);
                heed_tensor tq = dq.desc(), tk = dk.desc(), tm = dm.desc();
                ASSERT_EQ(heed_block_mask_estimate(&tq, &tk, (int32_t)block, 0.8f, 0.0f, causal, &tm), HEED_OK) << heed_last_error();
                dm.download();
                std::vector<double> margin;
                auto ref = mask_estimate_reference(q, k, block, 0.8, 1.0 / std::sqrt((double)d), causal, &margin);
                int64_t kept = 0;
                for (int64_t i = 0; i < mask.count(); ++i) {
                    ASSERT_TRUE(mask.bytes[i] == 0 || mask.bytes[i] == 1) << "unwritten mask element " << i;
                    if (margin[i] > 1e-5) {
                        EXPECT_EQ(mask.bytes[i], ref[i]) << "element " << i;
                    }
                    kept += mask.bytes[i];
                }
                EXPECT_LT(kept, mask.count());  // the estimate did drop something
            }
}

TEST(CudaAttentionAggregate, MatchesFloat64Reference) {
    REQUIRE_GPU();
    std::mt19937 rng(36);
    const int64_t sizes[][2] = {{1, 1}, {5, 77}, {40, 530}};
    for (int32_t dt : {HEED_F32, HEED_F16, HEED_BF16})
        for (int64_t d : {64, 128, 40})
            for (int64_t hkv : {8, 2, 1})
                for (bool causal : {true, false})
                    for (auto &s : sizes) {
                        const int64_t n_q = s[0], n_k = s[1], H = 8;
                        SCOPED_TRACE(std::string(dtype_label(dt)) + " n_q" + std::to_string(n_q) + " n_k" +
                                     std::to_string(n_k) + " d" + std::to_string(d) + " Hkv" + std::to_string(hkv) +
                                     (causal ? " causal" : ""));
                        HostTensor q(dt, {n_q, H, d}), k(dt, {n_k, hkv, d});
                        q.fill_normal(rng);
                        k.fill_normal(rng);
                        HostTensor kpos = positions(n_k, 10), qpos(HEED_I32, {n_q});
                        std::uniform_int_distribution<int> pick(0, (int)n_k + 12);
                        for (int64_t i = 0; i < n_q; ++i) qpos.set(i, pick(rng));
                        HostTensor out(HEED_F32, {n_k}), heads(HEED_F32, {H, n_k});
                        out.poison();
                        heads.poison();
                        DeviceCopy dq(q), dqp(qpos), dk(k), dkp(kpos), dout(out), dh(heads);
                        heed_tensor tq = dq.desc(), tqp = dqp.desc(), tk = dk.desc(), tkp = dkp.desc(), to = dout.desc(),
                                    th = dh.desc();
                        ASSERT_EQ(heed_attention_aggregate(&tq, &tqp, &tk, &tkp, 0.0f, causal, &to, &th), HEED_OK)
                            << heed_last_error();
                        dout.download();
                        dh.download();
                        AggregateRef ref = aggregate_reference(q, qpos, k, kpos, 1.0 / std::sqrt((double)d), causal);
                        EXPECT_LE(relative_error(out, ref.total), 2e-5);
                        EXPECT_LE(relative_error(heads, ref.per_head), 2e-5);
                    }
}

TEST(CudaAttentionAggregate, ManyKeysFewRows) {
    REQUIRE_GPU();
    std::mt19937 rng(37);
    const int64_t n_q = 20, n_k = 20000, H = 8, Hkv = 2, d = 128;
    HostTensor q(HEED_BF16, {n_q, H, d}), k(HEED_BF16, {n_k, Hkv, d});
    q.fill_normal(rng);
    k.fill_normal(rng);
    HostTensor kpos = positions(n_k), qpos = positions(n_q, n_k - n_q);
    HostTensor out(HEED_F32, {n_k});
    out.poison();
    DeviceCopy dq(q), dqp(qpos), dk(k), dkp(kpos), dout(out);
    heed_tensor tq = dq.desc(), tqp = dqp.desc(), tk = dk.desc(), tkp = dkp.desc(), to = dout.desc();
    ASSERT_EQ(heed_attention_aggregate(&tq, &tqp, &tk, &tkp, 0.0f, 1, &to, nullptr), HEED_OK) << heed_last_error();
    dout.download();
    AggregateRef ref = aggregate_reference(q, qpos, k, kpos, 1.0 / std::sqrt((double)d), true);
    EXPECT_LE(relative_error(out, ref.total), 2e-5);
}

namespace {
// Square causal aggregation (several row tiles, heads per group) on both CUDA paths: aligned
// rows take the tensor cores, padded rows (pad 3: rows not 16-byte aligned) the CUDA-core kernels.
void square_case(int32_t dt, int64_t n, int64_t d, int64_t pad, bool causal, std::mt19937 &rng) {
    SCOPED_TRACE(std::string(dtype_label(dt)) + " n" + std::to_string(n) + " d" + std::to_string(d) + " pad" +
                 std::to_string(pad) + (causal ? " causal" : ""));
    const int64_t H = 8, Hkv = 2;
    HostTensor q(dt, {n, H, d}, pad), k(dt, {n, Hkv, d}, pad);
    q.fill_normal(rng);
    k.fill_normal(rng);
    HostTensor pos = positions(n), out(HEED_F32, {n}), heads(HEED_F32, {H, n});
    out.poison();
    heads.poison();
    DeviceCopy dq(q), dk(k), dp(pos), dout(out), dh(heads);
    heed_tensor tq = dq.desc(), tk = dk.desc(), tp = dp.desc(), to = dout.desc(), th = dh.desc();
    ASSERT_EQ(heed_attention_aggregate(&tq, &tp, &tk, &tp, 0.0f, causal, &to, &th), HEED_OK) << heed_last_error();
    dout.download();
    dh.download();
    AggregateRef ref = aggregate_reference(q, pos, k, pos, 1.0 / std::sqrt((double)d), causal);
    EXPECT_LE(relative_error(out, ref.total), 2e-5);
    EXPECT_LE(relative_error(heads, ref.per_head), 2e-5);
}
}  // namespace

TEST(CudaAttentionAggregate, SquareOnBothPaths) {
    REQUIRE_GPU();
    std::mt19937 rng(38);
    for (bool causal : {true, false}) {
        square_case(HEED_BF16, 333, 128, 0, causal, rng);
        square_case(HEED_F16, 200, 64, 0, causal, rng);
        square_case(HEED_BF16, 333, 128, 3, causal, rng);
    }
}
