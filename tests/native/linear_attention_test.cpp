// linear_attention_test.cpp - heed_linear_attention_causal against the float64 recurrence:
// feature maps, decay, normalizer, initial state, streaming in two calls, odd sizes, f16,
// the fast path against the reference path, and every rejected argument.
#include <gtest/gtest.h>

#include "kernel_reference.hpp"

using namespace heed_test;

namespace {

struct LinearCase {
    int64_t B, H, N, d, dv;
    int map;
    bool decay, normalize, state;
    int32_t dtype = HEED_F32;
    int64_t pad = 0;  // non-contiguous inputs
};

struct LinearRun {
    HostTensor q, k, v, lam, s_in, z_in, out, s_out, z_out;
};

LinearRun make_inputs(const LinearCase &c, std::mt19937_64 &rng) {
    LinearRun r;
    r.q = HostTensor(c.dtype, {c.B, c.H, c.N, c.d}, c.pad);
    r.k = HostTensor(c.dtype, {c.B, c.H, c.N, c.d}, c.pad);
    r.v = HostTensor(c.dtype, {c.B, c.H, c.N, c.dv}, c.pad);
    // q, k scaled so that q.k stays O(1) (as after a real projection).
    r.q.fill_normal(rng, 1.0 / std::sqrt((double)c.d));
    r.k.fill_normal(rng, 1.0 / std::sqrt((double)c.d));
    r.v.fill_normal(rng);
    r.lam = HostTensor(HEED_F32, {c.H});
    std::uniform_real_distribution<double> u(0.8, 1.0);
    for (int64_t h = 0; h < c.H; ++h) r.lam.set(h, u(rng));
    r.s_in = HostTensor(HEED_F32, {c.B, c.H, c.d, c.dv});
    r.z_in = HostTensor(HEED_F32, {c.B, c.H, c.d});
    r.s_in.fill_normal(rng, 0.1);
    std::uniform_real_distribution<double> zpos(0.5, 2.0);  // a positive z, as elu+1 features build
    for (int64_t i = 0; i < r.z_in.count(); ++i) r.z_in.set(i, zpos(rng));
    r.out = HostTensor(c.dtype, {c.B, c.H, c.N, c.dv});
    r.s_out = HostTensor(HEED_F32, {c.B, c.H, c.d, c.dv});
    r.z_out = HostTensor(HEED_F32, {c.B, c.H, c.d});
    r.out.poison();
    r.s_out.poison();
    r.z_out.poison();
    return r;
}

heed_status run(const LinearCase &c, LinearRun &r) {
    heed_tensor q = r.q.desc(), k = r.k.desc(), v = r.v.desc(), lam = r.lam.desc(), si = r.s_in.desc(),
                zi = r.z_in.desc(), o = r.out.desc(), so = r.s_out.desc(), zo = r.z_out.desc();
    return heed_linear_attention_causal(&q, &k, &v, c.decay ? &lam : nullptr, c.state ? &si : nullptr,
                                        c.state ? &zi : nullptr, c.map, c.normalize, 0.0f, &o, &so, &zo);
}

void expect_matches_reference(const LinearCase &c, double tol) {
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE("seed " + std::to_string(seed) + " N " + std::to_string(c.N) + " d " + std::to_string(c.d) +
                 " map " + std::to_string(c.map) + " decay " + std::to_string(c.decay) + " norm " +
                 std::to_string(c.normalize) + " state " + std::to_string(c.state));
    std::mt19937_64 rng(seed);
    LinearRun r = make_inputs(c, rng);
    ASSERT_EQ(run(c, r), HEED_OK) << heed_last_error();
    EXPECT_TRUE(r.out.all_finite()) << "an output element was not written";
    EXPECT_TRUE(r.s_out.all_finite());
    EXPECT_TRUE(r.z_out.all_finite());
    LinearRef ref = linear_reference(r.q, r.k, r.v, c.decay ? &r.lam : nullptr, c.state ? &r.s_in : nullptr,
                                     c.state ? &r.z_in : nullptr, c.map, c.normalize, HEED_LINEAR_DEFAULT_EPSILON);
    EXPECT_LT(relative_error(values(r.out), ref.out), tol);
    EXPECT_LT(relative_error(values(r.s_out), ref.state), tol);
    EXPECT_LT(relative_error(values(r.z_out), ref.z), tol);
}

}  // namespace

TEST(LinearAttention, MatchesFloat64ReferenceAcrossOptions) {
    // N = 1, a partial chunk, exactly one chunk, several chunks with a partial last one.
    for (int64_t N : {1, 37, 64, 150})
        for (int map : {HEED_LINEAR_FEATURE_IDENTITY, HEED_LINEAR_FEATURE_ELU1})
            for (bool decay : {false, true}) {
                // The normalizer only with elu+1 (positive features): with the identity map q.z
                // crosses zero and the quotient is ill-conditioned by construction.
                for (bool normalize : {false, true}) {
                    if (normalize && map == HEED_LINEAR_FEATURE_IDENTITY) continue;
                    expect_matches_reference({1, 2, N, 64, 64, map, decay, normalize, N == 150}, 1e-5);
                }
            }
}

TEST(LinearAttention, HeadDim128AndUnequalValueDim) {
    expect_matches_reference({2, 1, 130, 128, 128, HEED_LINEAR_FEATURE_ELU1, true, true, true}, 1e-5);
    expect_matches_reference({1, 3, 70, 64, 40, HEED_LINEAR_FEATURE_IDENTITY, true, false, true}, 1e-5);
    expect_matches_reference({1, 1, 9, 5, 3, HEED_LINEAR_FEATURE_ELU1, false, true, false}, 1e-5);
}

TEST(LinearAttention, StridedInputsAndHalfPrecision) {
    expect_matches_reference({1, 2, 100, 64, 64, HEED_LINEAR_FEATURE_ELU1, true, true, true, HEED_F32, 3}, 1e-5);
    // f16 in and out: the inputs are exact f16 numbers, the output rounds once to f16.
    expect_matches_reference({1, 2, 100, 64, 64, HEED_LINEAR_FEATURE_ELU1, true, true, false, HEED_F16}, 2e-3);
    expect_matches_reference({1, 2, 100, 64, 64, HEED_LINEAR_FEATURE_IDENTITY, true, false, false, HEED_BF16}, 1e-2);
}

TEST(LinearAttention, DecayZeroAndOneAreExactLimits) {
    // lambda = 0: o_t = (q_t.k_t) v_t (only the current token).
    std::mt19937_64 rng(fresh_seed());
    LinearCase c{1, 1, 70, 8, 4, HEED_LINEAR_FEATURE_IDENTITY, true, false, false};
    LinearRun r = make_inputs(c, rng);
    r.lam.set(0, 0.0);
    ASSERT_EQ(run(c, r), HEED_OK) << heed_last_error();
    for (int64_t t = 0; t < c.N; ++t) {
        double qk = 0;
        for (int64_t i = 0; i < c.d; ++i) qk += r.q.at({0, 0, t, i}) * r.k.at({0, 0, t, i});
        for (int64_t j = 0; j < c.dv; ++j) EXPECT_NEAR(r.out.at({0, 0, t, j}), qk * r.v.at({0, 0, t, j}), 1e-5);
    }
}

TEST(LinearAttention, StreamingInTwoCallsEqualsOneCall) {
    for (int64_t split : {1, 64, 100}) {
        const uint64_t seed = fresh_seed();
        SCOPED_TRACE("seed " + std::to_string(seed) + " split " + std::to_string(split));
        std::mt19937_64 rng(seed);
        LinearCase whole{2, 2, 230, 64, 64, HEED_LINEAR_FEATURE_ELU1, true, true, false};
        LinearRun r = make_inputs(whole, rng);
        ASSERT_EQ(run(whole, r), HEED_OK) << heed_last_error();

        // The same tokens in two calls, the state handed over.
        auto slice = [](const HostTensor &src, int64_t t0, int64_t t1) {
            HostTensor b(HEED_F32, {src.shape[0], src.shape[1], t1 - t0, src.shape[3]});
            for (int64_t x = 0; x < src.shape[0]; ++x)
                for (int64_t y = 0; y < src.shape[1]; ++y)
                    for (int64_t t = t0; t < t1; ++t)
                        for (int64_t c = 0; c < src.shape[3]; ++c) b.set(b.offset({x, y, t - t0, c}), src.at({x, y, t, c}));
            return b;
        };
        HostTensor state(HEED_F32, {2, 2, 64, 64}), z(HEED_F32, {2, 2, 64});
        std::vector<double> streamed;
        for (auto [t0, t1] : {std::pair<int64_t, int64_t>{0, split}, {split, whole.N}}) {
            HostTensor q = slice(r.q, t0, t1), k = slice(r.k, t0, t1), v = slice(r.v, t0, t1), o(HEED_F32, {2, 2, t1 - t0, 64});
            o.poison();
            heed_tensor qt = q.desc(), kt = k.desc(), vt = v.desc(), lt = r.lam.desc(), st = state.desc(), zt = z.desc(),
                        ot = o.desc();
            // First call starts from zeros (NULL state); the second reads and overwrites the state in place.
            ASSERT_EQ(heed_linear_attention_causal(&qt, &kt, &vt, &lt, t0 == 0 ? nullptr : &st, t0 == 0 ? nullptr : &zt,
                                                   whole.map, 1, 0.0f, &ot, &st, &zt),
                      HEED_OK)
                << heed_last_error();
            ASSERT_TRUE(o.all_finite());
            for (int64_t x = 0; x < 2; ++x)
                for (int64_t y = 0; y < 2; ++y)
                    for (int64_t t = t0; t < t1; ++t)
                        for (int64_t c = 0; c < 64; ++c) {
                            const double a = o.at({x, y, t - t0, c}), b = r.out.at({x, y, t, c});
                            EXPECT_NEAR(a, b, 1e-5 * (1 + std::fabs(b)));
                        }
        }
        EXPECT_LT(relative_error(values(state), values(r.s_out)), 1e-5);
        EXPECT_LT(relative_error(values(z), values(r.z_out)), 1e-5);
    }
}

TEST(LinearAttention, FastPathMatchesReferencePath) {
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::mt19937_64 rng(seed);
    LinearCase c{2, 3, 200, 128, 64, HEED_LINEAR_FEATURE_ELU1, true, true, true};
    LinearRun fast = make_inputs(c, rng);
    LinearRun ref = fast;
    ref.out.poison();
    {
        CpuPath path(1);
        ASSERT_EQ(run(c, ref), HEED_OK) << heed_last_error();
    }
    ASSERT_EQ(run(c, fast), HEED_OK) << heed_last_error();
    EXPECT_LT(relative_error(values(fast.out), values(ref.out)), 1e-6);
    EXPECT_LT(relative_error(values(fast.s_out), values(ref.s_out)), 1e-6);
    {
        CpuPath one_thread(0, 1);  // the fast path on one thread gives the same
        LinearRun single = fast;
        single.out.poison();
        ASSERT_EQ(run(c, single), HEED_OK) << heed_last_error();
        EXPECT_EQ(values(single.out), values(fast.out));
    }
}

TEST(LinearAttention, NormalizerGuardKeepsZeroDenominatorFinite) {
    std::mt19937_64 rng(fresh_seed());
    LinearCase c{1, 1, 10, 4, 4, HEED_LINEAR_FEATURE_IDENTITY, false, true, false};
    LinearRun r = make_inputs(c, rng);
    for (int64_t t = 0; t < c.N; ++t)
        for (int64_t i = 0; i < c.d; ++i) r.q.set(r.q.offset({0, 0, t, i}), 0.0);  // q.z = 0 and q^T S = 0
    ASSERT_EQ(run(c, r), HEED_OK) << heed_last_error();
    for (double x : values(r.out)) EXPECT_EQ(x, 0.0);
}

TEST(LinearAttention, RejectsBadArguments) {
    std::mt19937_64 rng(fresh_seed());
    LinearCase c{1, 2, 10, 8, 8, HEED_LINEAR_FEATURE_IDENTITY, true, false, true};
    LinearRun r = make_inputs(c, rng);
    heed_tensor q = r.q.desc(), k = r.k.desc(), v = r.v.desc(), lam = r.lam.desc(), si = r.s_in.desc(),
                zi = r.z_in.desc(), o = r.out.desc(), so = r.s_out.desc(), zo = r.z_out.desc();
    auto call = [&](int map = 0, int norm = 0, float eps = 0.0f) {
        return heed_linear_attention_causal(&q, &k, &v, &lam, &si, &zi, map, norm, eps, &o, &so, &zo);
    };
    ASSERT_EQ(call(), HEED_OK) << heed_last_error();

    EXPECT_EQ(heed_linear_attention_causal(nullptr, &k, &v, nullptr, nullptr, nullptr, 0, 0, 0, &o, nullptr, nullptr),
              HEED_ERR_INVALID_ARGUMENT);
    EXPECT_TRUE(message_has("q"));
    EXPECT_EQ(call(7), HEED_ERR_INVALID_ARGUMENT);
    EXPECT_TRUE(message_has("feature_map"));
    EXPECT_EQ(call(0, 2), HEED_ERR_INVALID_ARGUMENT);
    EXPECT_TRUE(message_has("normalize"));
    EXPECT_EQ(call(0, 0, NAN), HEED_ERR_INVALID_ARGUMENT);
    EXPECT_TRUE(message_has("epsilon"));

    heed_tensor bad = k;
    bad.shape[2] = 9;
    EXPECT_EQ(heed_linear_attention_causal(&q, &bad, &v, nullptr, nullptr, nullptr, 0, 0, 0, &o, nullptr, nullptr),
              HEED_ERR_INVALID_ARGUMENT);
    EXPECT_TRUE(message_has("k: shape[2]"));
    bad = o;
    bad.shape[3] = 7;
    EXPECT_EQ(heed_linear_attention_causal(&q, &k, &v, nullptr, nullptr, nullptr, 0, 0, 0, &bad, nullptr, nullptr),
              HEED_ERR_INVALID_ARGUMENT);
    EXPECT_TRUE(message_has("out"));
    bad = si;
    bad.dtype = HEED_F16;
    EXPECT_EQ(heed_linear_attention_causal(&q, &k, &v, nullptr, &bad, nullptr, 0, 0, 0, &o, nullptr, nullptr),
              HEED_ERR_INVALID_ARGUMENT);
    EXPECT_TRUE(message_has("state_in"));
    bad = zo;
    bad.shape[2] = 3;
    EXPECT_EQ(heed_linear_attention_causal(&q, &k, &v, nullptr, nullptr, nullptr, 0, 0, 0, &o, nullptr, &bad),
              HEED_ERR_INVALID_ARGUMENT);
    EXPECT_TRUE(message_has("z_out"));
    bad = q;
    bad.dtype = HEED_I32;
    EXPECT_EQ(heed_linear_attention_causal(&bad, &k, &v, nullptr, nullptr, nullptr, 0, 0, 0, &o, nullptr, nullptr),
              HEED_ERR_INVALID_ARGUMENT);
    bad = v;
    bad.data = nullptr;
    EXPECT_EQ(heed_linear_attention_causal(&q, &k, &bad, nullptr, nullptr, nullptr, 0, 0, 0, &o, nullptr, nullptr),
              HEED_ERR_INVALID_ARGUMENT);
    EXPECT_TRUE(message_has("v: data is null"));
    bad = q;
    bad.strides[0] = -1;
    EXPECT_EQ(heed_linear_attention_causal(&bad, &k, &v, nullptr, nullptr, nullptr, 0, 0, 0, &o, nullptr, nullptr),
              HEED_ERR_INVALID_ARGUMENT);
    r.lam.set(1, 1.5);
    EXPECT_EQ(call(), HEED_ERR_INVALID_ARGUMENT);
    EXPECT_TRUE(message_has("decay[1]"));
    r.lam.set(1, NAN);
    EXPECT_EQ(call(), HEED_ERR_INVALID_ARGUMENT);
}
