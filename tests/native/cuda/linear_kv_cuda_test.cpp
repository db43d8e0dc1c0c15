// linear_kv_cuda_test.cpp - linear attention, KV quantization and quantized decode attention
// on device memory (Cuda* suites: CUDA builds only, skipped without a GPU): against float64
// references, bit for bit against the CPU quantizer, poisoned outputs, streaming, errors.
#include <gtest/gtest.h>

#include <cstdlib>

#include "kernel_reference.hpp"

using namespace heed_test;

namespace {

#define REQUIRE_GPU() \
    if (heed_cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device"

// Device memory with the bytes (and strides) of a host HostTensor.
struct Dev {
    HostTensor *host = nullptr;
    void *ptr = nullptr;
    size_t n = 0;
    Dev() = default;
    explicit Dev(HostTensor &h) : host(&h), n(h.bytes.size()) {
        EXPECT_EQ(heed_cuda_malloc(0, n, &ptr), HEED_OK) << heed_last_error();
        EXPECT_EQ(heed_cuda_memcpy(ptr, h.bytes.data(), n, 0), HEED_OK) << heed_last_error();
    }
    Dev(const Dev &) = delete;
    Dev &operator=(const Dev &) = delete;
    ~Dev() {
        if (ptr) heed_cuda_free(ptr);
    }
    heed_tensor desc() {
        heed_tensor t = host->desc();
        t.data = ptr;
        return t;
    }
    void download() { ASSERT_EQ(heed_cuda_memcpy(host->bytes.data(), ptr, n, 1), HEED_OK) << heed_last_error(); }
};

// A quantized cache on the device, every byte poisoned (0xFF) first.
struct DevCache {
    heed_quant_kv c{};
    size_t bytes[HEED_QUANT_KV_TENSORS] = {};
    void *mem[HEED_QUANT_KV_TENSORS] = {};
    heed_tensor *tensors() { return &c.k_codes; }
    heed_status make(int64_t B, int64_t Hkv, int64_t N, int64_t d, int64_t dv, int bits, int group, int64_t S) {
        heed_status s = heed_quant_kv_sizes(B, Hkv, N, d, dv, bits, group, S, &c, bytes, nullptr);
        if (s != HEED_OK) return s;
        for (int i = 0; i < HEED_QUANT_KV_TENSORS; ++i) {
            const size_t n = bytes[i] + 16;
            if ((s = heed_cuda_malloc(0, n, &mem[i])) != HEED_OK) return s;
            std::vector<uint8_t> poison(n, 0xFF);
            if ((s = heed_cuda_memcpy(mem[i], poison.data(), n, 0)) != HEED_OK) return s;
            tensors()[i].data = mem[i];
        }
        return HEED_OK;
    }
    std::vector<uint8_t> download(int i) {
        std::vector<uint8_t> h(bytes[i]);
        if (bytes[i]) {
            EXPECT_EQ(heed_cuda_memcpy(h.data(), mem[i], bytes[i], 1), HEED_OK) << heed_last_error();
        }
        return h;
    }
    ~DevCache() {
        for (void *p : mem)
            if (p) heed_cuda_free(p);
    }
};

void linear_case(int64_t B, int64_t H, int64_t N, int64_t d, int64_t dv, int map, bool decay, bool normalize,
                 bool state, int32_t dtype, double tol) {
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE("seed " + std::to_string(seed) + " N " + std::to_string(N) + " d " + std::to_string(d) + " dv " +
                 std::to_string(dv) + " map " + std::to_string(map) + " decay " + std::to_string(decay) + " norm " +
                 std::to_string(normalize));
    std::mt19937_64 rng(seed);
    HostTensor q(dtype, {B, H, N, d}), k(dtype, {B, H, N, d}), v(dtype, {B, H, N, dv}), lam(HEED_F32, {H}),
        si(HEED_F32, {B, H, d, dv}), zi(HEED_F32, {B, H, d}), out(dtype, {B, H, N, dv}), so(HEED_F32, {B, H, d, dv}),
        zo(HEED_F32, {B, H, d});
    q.fill_normal(rng, 1.0 / std::sqrt((double)d));
    k.fill_normal(rng, 1.0 / std::sqrt((double)d));
    v.fill_normal(rng);
    std::uniform_real_distribution<double> u(0.8, 1.0), zpos(0.5, 2.0);
    for (int64_t h = 0; h < H; ++h) lam.set(h, u(rng));
    si.fill_normal(rng, 0.1);
    for (int64_t i = 0; i < zi.count(); ++i) zi.set(i, zpos(rng));
    out.poison(), so.poison(), zo.poison();
    Dev dq(q), dk(k), dvv(v), dl(lam), dsi(si), dzi(zi), dout(out), dso(so), dzo(zo);
    heed_tensor tq = dq.desc(), tk = dk.desc(), tv = dvv.desc(), tl = dl.desc(), tsi = dsi.desc(), tzi = dzi.desc(),
                to = dout.desc(), tso = dso.desc(), tzo = dzo.desc();
    ASSERT_EQ(heed_linear_attention_causal(&tq, &tk, &tv, decay ? &tl : nullptr, state ? &tsi : nullptr,
                                           state ? &tzi : nullptr, map, normalize, 0.0f, &to, &tso, &tzo),
              HEED_OK)
        << heed_last_error();
    dout.download(), dso.download(), dzo.download();
    ASSERT_TRUE(out.all_finite() && so.all_finite() && zo.all_finite()) << "an output element was not written";
    LinearRef ref = linear_reference(q, k, v, decay ? &lam : nullptr, state ? &si : nullptr, state ? &zi : nullptr, map,
                                     normalize, HEED_LINEAR_DEFAULT_EPSILON);
    EXPECT_LT(relative_error(values(out), ref.out), tol);
    EXPECT_LT(relative_error(values(so), ref.state), 1e-5);
    EXPECT_LT(relative_error(values(zo), ref.z), 1e-5);
}

}  // namespace

TEST(CudaLinearAttention, MatchesFloat64Reference) {
    REQUIRE_GPU();
    // Both schedules: the sequence cut into parts run at once (default for few heads), and one
    // pass per head (HEED_LINEAR_PARTS=1).
    for (const char *parts : {"", "1"}) {
    SCOPED_TRACE(std::string("HEED_LINEAR_PARTS=") + parts);
    if (*parts) setenv("HEED_LINEAR_PARTS", parts, 1);
    else unsetenv("HEED_LINEAR_PARTS");
    linear_case(1, 2, 1, 64, 64, HEED_LINEAR_FEATURE_IDENTITY, false, false, false, HEED_F32, 1e-5);
    linear_case(1, 2, 150, 64, 64, HEED_LINEAR_FEATURE_IDENTITY, true, false, true, HEED_F32, 1e-5);
    linear_case(2, 1, 200, 128, 128, HEED_LINEAR_FEATURE_ELU1, true, true, true, HEED_F32, 1e-5);
    linear_case(1, 3, 70, 128, 40, HEED_LINEAR_FEATURE_ELU1, false, true, false, HEED_F32, 1e-5);
    linear_case(1, 1, 9, 5, 3, HEED_LINEAR_FEATURE_ELU1, true, true, true, HEED_F32, 1e-5);
    linear_case(1, 2, 130, 64, 64, HEED_LINEAR_FEATURE_ELU1, true, true, false, HEED_F16, 2e-3);
    linear_case(1, 1, 1000, 64, 64, HEED_LINEAR_FEATURE_ELU1, true, true, true, HEED_F32, 1e-5);  // many parts
    }
    unsetenv("HEED_LINEAR_PARTS");
}

namespace {
void streaming_case();
}

TEST(CudaLinearAttention, StreamingWithStateInPlaceEqualsOneCall) {
    REQUIRE_GPU();
    for (const char *parts : {"", "1"}) {
        SCOPED_TRACE(std::string("HEED_LINEAR_PARTS=") + parts);
        if (*parts) setenv("HEED_LINEAR_PARTS", parts, 1);
        else unsetenv("HEED_LINEAR_PARTS");
        streaming_case();
    }
    unsetenv("HEED_LINEAR_PARTS");
}

namespace {
void streaming_case() {
    std::mt19937_64 rng(fresh_seed());
    const int64_t B = 1, H = 2, N = 230, d = 64, split = 100;
    HostTensor q(HEED_F32, {B, H, N, d}), k(HEED_F32, {B, H, N, d}), v(HEED_F32, {B, H, N, d}), lam(HEED_F32, {H});
    q.fill_normal(rng, 0.125), k.fill_normal(rng, 0.125), v.fill_normal(rng);
    lam.set(0, 0.95), lam.set(1, 0.99);
    LinearRef ref = linear_reference(q, k, v, &lam, nullptr, nullptr, HEED_LINEAR_FEATURE_ELU1, true, HEED_LINEAR_DEFAULT_EPSILON);
    HostTensor state(HEED_F32, {B, H, d, d}), z(HEED_F32, {B, H, d});
    Dev dl(lam), ds(state), dz(z);
    std::vector<double> streamed(B * H * N * d);
    for (auto [t0, t1] : {std::pair<int64_t, int64_t>{0, split}, {split, N}}) {
        HostTensor qs(HEED_F32, {B, H, t1 - t0, d}), ks = qs, vs = qs, o = qs;
        for (int64_t h = 0; h < H; ++h)
            for (int64_t t = t0; t < t1; ++t)
                for (int64_t c = 0; c < d; ++c) {
                    qs.set(qs.offset({0, h, t - t0, c}), q.at({0, h, t, c}));
                    ks.set(ks.offset({0, h, t - t0, c}), k.at({0, h, t, c}));
                    vs.set(vs.offset({0, h, t - t0, c}), v.at({0, h, t, c}));
                }
        o.poison();
        Dev dq(qs), dk(ks), dvv(vs), dout(o);
        heed_tensor tq = dq.desc(), tk = dk.desc(), tv = dvv.desc(), to = dout.desc(), tl = dl.desc(), ts = ds.desc(),
                    tz = dz.desc();
        ASSERT_EQ(heed_linear_attention_causal(&tq, &tk, &tv, &tl, t0 == 0 ? nullptr : &ts, t0 == 0 ? nullptr : &tz,
                                               HEED_LINEAR_FEATURE_ELU1, 1, 0.0f, &to, &ts, &tz),
                  HEED_OK)
            << heed_last_error();
        dout.download();
        ASSERT_TRUE(o.all_finite());
        for (int64_t h = 0; h < H; ++h)
            for (int64_t t = t0; t < t1; ++t)
                for (int64_t c = 0; c < d; ++c) streamed[(h * N + t) * d + c] = o.at({0, h, t - t0, c});
    }
    EXPECT_LT(relative_error(streamed, ref.out), 1e-5);
    ds.download(), dz.download();
    EXPECT_LT(relative_error(values(state), ref.state), 1e-5);
    EXPECT_LT(relative_error(values(z), ref.z), 1e-5);
}
}  // namespace

TEST(CudaKvQuant, WritesTheSameBytesAsTheCpu) {
    REQUIRE_GPU();
    for (int bits : {8, 4, 2})
        for (int group : {32, 128})
            for (int64_t N : {1, 77, 300}) {
                const uint64_t seed = fresh_seed();
                SCOPED_TRACE("seed " + std::to_string(seed) + " bits " + std::to_string(bits) + " g " +
                             std::to_string(group) + " N " + std::to_string(N));
                std::mt19937_64 rng(seed);
                const int64_t B = 2, Hkv = 2, d = 128, dv = 64;
                HostTensor k(HEED_F32, {B, Hkv, N, d}, 1), v(HEED_F16, {B, Hkv, N, dv}), mask(HEED_U8, {B, N});
                k.fill_normal(rng), v.fill_normal(rng, 2.0, 0.5);
                std::bernoulli_distribution pick(0.05);
                int64_t S = 0;
                for (int64_t b = 0; b < B; ++b) {
                    int64_t cnt = 0;
                    for (int64_t n = 0; n < N; ++n) cnt += (mask.bytes[b * N + n] = pick(rng));
                    S = std::max(S, cnt);
                }
                HostCache host;
                ASSERT_EQ(host.make(B, Hkv, N, d, dv, bits, group, S), HEED_OK);
                heed_tensor hk = k.desc(), hv = v.desc(), hm = mask.desc();
                ASSERT_EQ(heed_kv_quantize(&hk, &hv, &hm, &host.c), HEED_OK) << heed_last_error();
                DevCache dev;
                ASSERT_EQ(dev.make(B, Hkv, N, d, dv, bits, group, S), HEED_OK) << heed_last_error();
                Dev dk(k), dvv(v), dm(mask);
                heed_tensor tk = dk.desc(), tv = dvv.desc(), tm = dm.desc();
                ASSERT_EQ(heed_kv_quantize(&tk, &tv, &tm, &dev.c), HEED_OK) << heed_last_error();
                for (int i = 0; i < HEED_QUANT_KV_TENSORS; ++i) {
                    std::vector<uint8_t> want(host.mem[i].begin(), host.mem[i].begin() + host.bytes[i]);
                    EXPECT_EQ(dev.download(i), want) << "tensor " << i;
                }
                // Dequantize on the device: the same values as on the CPU.
                HostTensor kd(HEED_F32, {B, Hkv, N, d}), vd(HEED_F32, {B, Hkv, N, dv}), kh = kd, vh = vd;
                kd.poison(), vd.poison();
                heed_tensor khd = kh.desc(), vhd = vh.desc();
                ASSERT_EQ(heed_kv_dequantize(&host.c, &khd, &vhd), HEED_OK);
                Dev dkd(kd), dvd(vd);
                heed_tensor tkd = dkd.desc(), tvd = dvd.desc();
                ASSERT_EQ(heed_kv_dequantize(&dev.c, &tkd, &tvd), HEED_OK) << heed_last_error();
                dkd.download(), dvd.download();
                EXPECT_EQ(values(kd), values(kh));
                EXPECT_EQ(values(vd), values(vh));
            }
}

TEST(CudaKvQuant, RejectsTooManySalientTokens) {
    REQUIRE_GPU();
    HostTensor k(HEED_F32, {1, 1, 40, 64}), v = k, mask(HEED_U8, {40});
    std::fill(mask.bytes.begin(), mask.bytes.end(), 1);
    DevCache dev;
    ASSERT_EQ(dev.make(1, 1, 40, 64, 64, 4, 32, 3), HEED_OK);
    Dev dk(k), dvv(v), dm(mask);
    heed_tensor tk = dk.desc(), tv = dvv.desc(), tm = dm.desc();
    EXPECT_EQ(heed_kv_quantize(&tk, &tv, &tm, &dev.c), HEED_ERR_INVALID_ARGUMENT);
    EXPECT_TRUE(message_has("salient capacity"));
    heed_tensor hk = k.desc();  // host k with a device cache
    EXPECT_EQ(heed_kv_quantize(&hk, &tv, nullptr, &dev.c), HEED_ERR_INVALID_ARGUMENT);
    EXPECT_TRUE(message_has("different memories"));
}

namespace {

void decode_case(int64_t B, int64_t H, int64_t Hkv, int64_t N, int64_t d, int64_t nq, int bits, int group, bool causal,
                 int splits, double salient, int32_t out_dtype = HEED_F32) {
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE("seed " + std::to_string(seed) + " B " + std::to_string(B) + " H " + std::to_string(H) + " Hkv " +
                 std::to_string(Hkv) + " N " + std::to_string(N) + " d " + std::to_string(d) + " nq " +
                 std::to_string(nq) + " bits " + std::to_string(bits) + " causal " + std::to_string(causal) +
                 " splits " + std::to_string(splits));
    std::mt19937_64 rng(seed);
    HostTensor q(HEED_F16, {B, H, nq, d}), k(HEED_F16, {B, Hkv, N, d}), v(HEED_F16, {B, Hkv, N, d}), mask(HEED_U8, {N});
    q.fill_normal(rng, 1.5), k.fill_normal(rng), v.fill_normal(rng);
    std::bernoulli_distribution pick(salient);
    int64_t S = 0;
    for (int64_t n = 0; n < N; ++n) S += (mask.bytes[n] = pick(rng));
    DevCache dev;
    ASSERT_EQ(dev.make(B, Hkv, N, d, d, bits, group, S), HEED_OK) << heed_last_error();
    Dev dq(q), dk(k), dvv(v), dm(mask);
    heed_tensor tq = dq.desc(), tk = dk.desc(), tv = dvv.desc(), tm = dm.desc();
    ASSERT_EQ(heed_kv_quantize(&tk, &tv, &tm, &dev.c), HEED_OK) << heed_last_error();
    HostTensor kd(HEED_F32, {B, Hkv, N, d}), vd(HEED_F32, {B, Hkv, N, d}), out(out_dtype, {B, H, nq, d});
    Dev dkd(kd), dvd(vd);
    heed_tensor tkd = dkd.desc(), tvd = dvd.desc();
    ASSERT_EQ(heed_kv_dequantize(&dev.c, &tkd, &tvd), HEED_OK) << heed_last_error();
    dkd.download(), dvd.download();
    out.poison();
    Dev dout(out);
    heed_tensor to = dout.desc();
    ASSERT_EQ(heed_quant_decode_attention(&tq, &dev.c, causal, 0.0f, splits, &to), HEED_OK) << heed_last_error();
    dout.download();
    ASSERT_TRUE(out.all_finite()) << "an output element was not written";
    const double scale = 1.0 / std::sqrt((double)d);
    // The device runs both products on tensor cores with fp16 operands and f32 sums, as SDPA on an
    // fp16 cache does: the query times the K scale, P, and V dequantized to fp16 are each rounded
    // once (2^-11 relative at most). Seen here: 3e-4 to 1.1e-3 over random seeds; bound 2e-3.
    EXPECT_LT(relative_error(values(out), decode_reference(q, kd, vd, causal, scale)), 2e-3);
}

}  // namespace

TEST(CudaQuantDecode, MatchesFloat64OnDequantizedKv) {
    REQUIRE_GPU();
    for (int bits : {8, 4, 2})
        for (int64_t d : {64, 128}) {
            decode_case(1, 4, 1, 200, d, 1, bits, 64, false, 0, 0.0);      // GQA 4
            decode_case(2, 8, 1, 77, d, 3, bits, 32, true, 3, 0.05);      // GQA 8, causal rows, 3 splits
            decode_case(1, 2, 2, 130, d, 8, bits, 128, true, 1, 0.05);    // GQA 1, 8 rows, one split
            decode_case(1, 64, 8, 96, d, 8, bits, 32, true, 0, 0.0);      // 8 x 8 = 64 rows: two row tiles
        }
}

TEST(CudaQuantDecode, OddSizesLongContextAndHalfOutput) {
    REQUIRE_GPU();
    decode_case(1, 1, 1, 1, 64, 1, 4, 32, true, 0, 0.0);
    decode_case(1, 4, 1, 8, 64, 8, 4, 32, true, 0, 0.0);
    for (int splits : {1, 2, 7, 1000}) decode_case(1, 8, 2, 301, 64, 2, 4, 64, true, splits, 0.02);
    decode_case(2, 32, 8, 5000, 128, 1, 4, 128, false, 0, 0.001);
    decode_case(2, 4, 1, 150, 128, 1, 8, 32, false, 0, 0.1, HEED_F16);
    decode_case(3, 16, 4, 1001, 128, 2, 2, 32, true, 0, 0.3);  // many salient tokens, 8 rows, odd N
}

TEST(CudaQuantDecode, RejectsWhatTheDevicePathDoesNotTake) {
    REQUIRE_GPU();
    DevCache dev;
    ASSERT_EQ(dev.make(1, 1, 16, 32, 32, 4, 32, 0), HEED_OK);
    HostTensor k(HEED_F32, {1, 1, 16, 32}), v = k, q(HEED_F32, {1, 1, 1, 32}), out = q;
    Dev dk(k), dvv(v), dq(q), dout(out);
    heed_tensor tk = dk.desc(), tv = dvv.desc(), tq = dq.desc(), to = dout.desc();
    ASSERT_EQ(heed_kv_quantize(&tk, &tv, nullptr, &dev.c), HEED_OK) << heed_last_error();
    EXPECT_EQ(heed_quant_decode_attention(&tq, &dev.c, 1, 0.0f, 0, &to), HEED_ERR_UNSUPPORTED);
    EXPECT_TRUE(message_has("64 or 128"));
}
