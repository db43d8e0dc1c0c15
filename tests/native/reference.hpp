// reference.hpp - host tensors with random contents and float64 references of the attention
// kernels, for the native tests (PART B's tests may include it too).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "heed.h"
#include "tensor_view.hpp"

namespace heed_test {

// A tensor in host memory: any dtype, optionally with padded (non-contiguous) outer strides.
struct HostTensor {
    int32_t dtype = HEED_F32;
    std::vector<int64_t> shape, strides;
    std::vector<uint8_t> bytes;

    HostTensor() = default;
    // pad > 0 leaves `pad` unused elements after every innermost row, so outer strides are not
    // the contiguous ones (the innermost stride stays 1).
    HostTensor(int32_t dt, std::vector<int64_t> shp, int64_t pad = 0) : dtype(dt), shape(std::move(shp)) {
        strides.assign(shape.size(), 1);
        int64_t s = 1;
        for (int d = (int)shape.size() - 1; d >= 0; --d) {
            strides[d] = s;
            s *= shape[d] + (d == (int)shape.size() - 1 ? pad : 0);
        }
        bytes.assign((size_t)s * heed::dtype_size(dt), 0);
    }
    int64_t count() const {
        int64_t n = 1;
        for (auto x : shape) n *= x;
        return n;
    }
    heed_tensor desc() {
        heed_tensor t{};
        t.data = bytes.data();
        t.dtype = dtype;
        t.ndim = (int32_t)shape.size();
        for (size_t d = 0; d < shape.size(); ++d) {
            t.shape[d] = shape[d];
            t.strides[d] = strides[d];
        }
        return t;
    }
    int64_t offset(std::initializer_list<int64_t> idx) const {
        int64_t o = 0, d = 0;
        for (auto i : idx) o += i * strides[d++];
        return o;
    }
    // Flat index (row-major over shape) to element offset.
    int64_t offset_of_flat(int64_t flat) const {
        int64_t o = 0;
        for (int d = (int)shape.size() - 1; d >= 0; --d) {
            o += (flat % shape[d]) * strides[d];
            flat /= shape[d];
        }
        return o;
    }
    double get(int64_t off) const {
        heed_tensor t{};
        t.data = const_cast<uint8_t *>(bytes.data());
        t.dtype = dtype;
        switch (dtype) {
            case HEED_I32: return reinterpret_cast<const int32_t *>(bytes.data())[off];
            case HEED_U8: return bytes[off];
            default: return heed::load_f32(t, off);
        }
    }
    void set(int64_t off, double v) {
        heed_tensor t{};
        t.data = bytes.data();
        t.dtype = dtype;
        switch (dtype) {
            case HEED_I32: reinterpret_cast<int32_t *>(bytes.data())[off] = (int32_t)v; break;
            case HEED_U8: bytes[off] = (uint8_t)v; break;
            default: heed::store_f32(t, off, (float)v);
        }
    }
    double at(std::initializer_list<int64_t> idx) const { return get(offset(idx)); }
    double flat(int64_t i) const { return get(offset_of_flat(i)); }
    void fill_normal(std::mt19937 &rng, double sigma = 1.0) {
        std::normal_distribution<double> n(0.0, sigma);
        for (int64_t i = 0; i < count(); ++i) set(offset_of_flat(i), n(rng));
    }
    // Every byte NaN-patterned (floats) or 0xCD (integers): unwritten elements stand out.
    void poison() {
        if (dtype == HEED_F32) {
            float nan = std::numeric_limits<float>::quiet_NaN();
            for (size_t i = 0; i + 4 <= bytes.size(); i += 4) std::memcpy(&bytes[i], &nan, 4);
        } else if (dtype == HEED_F16 || dtype == HEED_BF16) {
            uint16_t nan = dtype == HEED_F16 ? 0x7e00 : 0x7fc0;
            for (size_t i = 0; i + 2 <= bytes.size(); i += 2) std::memcpy(&bytes[i], &nan, 2);
        } else {
            std::fill(bytes.begin(), bytes.end(), 0xCD);
        }
    }
};

inline const char *dtype_label(int32_t dt) { return heed::dtype_name(dt); }

// ‖out − ref‖ / ‖ref‖ over every element; NaN anywhere in out gives +inf.
inline double relative_error(const HostTensor &out, const std::vector<double> &ref) {
    double num = 0, den = 0;
    for (int64_t i = 0; i < out.count(); ++i) {
        double o = out.flat(i);
        if (std::isnan(o)) return std::numeric_limits<double>::infinity();
        num += (o - ref[i]) * (o - ref[i]);
        den += ref[i] * ref[i];
    }
    return den == 0 ? std::sqrt(num) : std::sqrt(num / den);
}

// Tolerance for outputs stored in dtype with fp32 accumulation inside.
inline double tolerance(int32_t output_dtype) {
    return output_dtype == HEED_F32 ? 2e-5 : (output_dtype == HEED_F16 ? 3e-3 : 1.5e-2);
}

// ---- float64 references -----------------------------------------------------------------

struct AggregateRef {
    std::vector<double> total;     // [n_k]
    std::vector<double> per_head;  // [H, n_k]
};

inline AggregateRef aggregate_reference(const HostTensor &q, const HostTensor &q_pos, const HostTensor &k,
                                        const HostTensor &k_pos, double scale, bool causal) {
    const int64_t n_q = q.shape[0], H = q.shape[1], d = q.shape[2], n_k = k.shape[0], Hkv = k.shape[1];
    AggregateRef r{std::vector<double>(n_k, 0.0), std::vector<double>(H * n_k, 0.0)};
    std::vector<double> s(n_k);
    for (int64_t h = 0; h < H; ++h)
        for (int64_t i = 0; i < n_q; ++i) {
            const int64_t g = h / (H / Hkv);
            double m = -std::numeric_limits<double>::infinity();
            for (int64_t j = 0; j < n_k; ++j) {
                if (causal && k_pos.at({j}) > q_pos.at({i})) {
                    s[j] = -std::numeric_limits<double>::infinity();
                    continue;
                }
                double dot = 0;
                for (int64_t c = 0; c < d; ++c) dot += q.at({i, h, c}) * k.at({j, g, c});
                s[j] = dot * scale;
                m = std::max(m, s[j]);
            }
            if (m == -std::numeric_limits<double>::infinity()) continue;
            double l = 0;
            for (int64_t j = 0; j < n_k; ++j) l += std::exp(s[j] - m);
            for (int64_t j = 0; j < n_k; ++j) {
                double p = std::exp(s[j] - m) / l;
                r.total[j] += p;
                r.per_head[h * n_k + j] += p;
            }
        }
    return r;
}

struct AttentionRef {
    std::vector<double> o;    // [B, H, Nq, d]
    std::vector<double> lse;  // [B, H, Nq]
};

// mask may be null (flash attention).
inline AttentionRef attention_reference(const HostTensor &q, const HostTensor &k, const HostTensor &v,
                                        const HostTensor *mask, int64_t block, double scale, bool causal) {
    const int64_t B = q.shape[0], H = q.shape[1], Nq = q.shape[2], d = q.shape[3], Hkv = k.shape[1], Nk = k.shape[2];
    AttentionRef r{std::vector<double>(B * H * Nq * d, 0.0), std::vector<double>(B * H * Nq, 0.0)};
    std::vector<double> s(Nk);
    const double ninf = -std::numeric_limits<double>::infinity();
    for (int64_t b = 0; b < B; ++b)
        for (int64_t h = 0; h < H; ++h)
            for (int64_t i = 0; i < Nq; ++i) {
                const int64_t g = h / (H / Hkv);
                double m = ninf;
                for (int64_t j = 0; j < Nk; ++j) {
                    bool visible = !(causal && j > i) && (!mask || mask->at({b, h, i / block, j / block}) != 0);
                    s[j] = ninf;
                    if (!visible) continue;
                    double dot = 0;
                    for (int64_t c = 0; c < d; ++c) dot += q.at({b, h, i, c}) * k.at({b, g, j, c});
                    s[j] = dot * scale;
                    m = std::max(m, s[j]);
                }
                const int64_t row = (b * H + h) * Nq + i;
                if (m == ninf) {
                    r.lse[row] = ninf;
                    continue;
                }
                double l = 0;
                for (int64_t j = 0; j < Nk; ++j) l += std::exp(s[j] - m);
                for (int64_t j = 0; j < Nk; ++j) {
                    if (s[j] == ninf) continue;
                    double p = std::exp(s[j] - m) / l;
                    for (int64_t c = 0; c < d; ++c) r.o[row * d + c] += p * v.at({b, g, j, c});
                }
                r.lse[row] = m + std::log(l);
            }
    return r;
}

// The estimator's rule in float64; margin[] gets, per mask element, how far the coverage
// boundary was (|prefix - coverage|), so callers can forgive decisions rounding may flip.
inline std::vector<uint8_t> mask_estimate_reference(const HostTensor &q, const HostTensor &k, int64_t block,
                                                    double coverage, double scale, bool causal,
                                                    std::vector<double> *margin = nullptr) {
    const int64_t B = q.shape[0], H = q.shape[1], Nq = q.shape[2], d = q.shape[3], Hkv = k.shape[1], Nk = k.shape[2];
    const int64_t nqb = (Nq + block - 1) / block, nkb = (Nk + block - 1) / block;
    std::vector<uint8_t> mask(B * H * nqb * nkb, 0);
    if (margin) margin->assign(mask.size(), 1.0);
    auto pooled = [&](const HostTensor &t, int64_t b, int64_t h, int64_t r0, int64_t r1) {
        std::vector<double> out(d, 0.0);
        for (int64_t r = r0; r < r1; ++r)
            for (int64_t c = 0; c < d; ++c) out[c] += t.at({b, h, r, c});
        for (auto &x : out) x /= (double)(r1 - r0);
        return out;
    };
    for (int64_t b = 0; b < B; ++b)
        for (int64_t h = 0; h < H; ++h) {
            const int64_t g = h / (H / Hkv);
            for (int64_t qb = 0; qb < nqb; ++qb) {
                auto qbar = pooled(q, b, h, qb * block, std::min(Nq, (qb + 1) * block));
                const int64_t diag = std::min(qb, nkb - 1), visible = causal ? diag + 1 : nkb;
                std::vector<double> s(visible);
                for (int64_t kb = 0; kb < visible; ++kb) {
                    auto kbar = pooled(k, b, g, kb * block, std::min(Nk, (kb + 1) * block));
                    s[kb] = scale * std::inner_product(qbar.begin(), qbar.end(), kbar.begin(), 0.0);
                }
                double mx = *std::max_element(s.begin(), s.end()), tot = 0;
                for (auto x : s) tot += std::exp(x - mx);
                std::vector<int64_t> order(visible);
                std::iota(order.begin(), order.end(), 0);
                std::stable_sort(order.begin(), order.end(), [&](int64_t x, int64_t y) { return s[x] > s[y]; });
                const int64_t base = ((b * H + h) * nqb + qb) * nkb;
                double before = 0;
                for (int64_t r = 0; r < visible; ++r) {
                    const int64_t kb = order[r];
                    mask[base + kb] = coverage >= 1.0 || before < coverage;
                    if (margin) (*margin)[base + kb] = coverage >= 1.0 ? 1.0 : std::fabs(before - coverage);
                    before += std::exp(s[kb] - mx) / tot;
                }
                mask[base] = mask[base + diag] = 1;
                if (margin) (*margin)[base] = (*margin)[base + diag] = 1.0;
            }
        }
    return mask;
}

// Positions 0..n-1 as an i32 tensor.
inline HostTensor positions(int64_t n, int64_t first = 0) {
    HostTensor p(HEED_I32, {n});
    for (int64_t i = 0; i < n; ++i) p.set(i, (double)(first + i));
    return p;
}

// The status and message of a call expected to fail with `status`, mentioning `needle`.
inline ::testing::AssertionResult fails_with(heed_status got, heed_status want, const std::string &needle) {
    std::string msg = heed_last_error();
    if (got != want)
        return ::testing::AssertionFailure() << "status " << heed_status_name(got) << " (" << msg << "), wanted "
                                             << heed_status_name(want);
    if (msg.find(needle) == std::string::npos)
        return ::testing::AssertionFailure() << "message '" << msg << "' does not mention '" << needle << "'";
    return ::testing::AssertionSuccess();
}

// Restores the default CPU path when a test leaves.
struct CpuPath {
    CpuPath(int reference, int threads) { heed_attention_cpu_config(reference, threads); }
    ~CpuPath() { heed_attention_cpu_config(0, 0); }
};

}  // namespace heed_test
