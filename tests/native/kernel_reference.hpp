// kernel_reference.hpp - what the native kernel tests compare against: host tensors (any dtype,
// optionally padded strides) filled with random values, and float64 references of every
// libheed kernel written as plain loops (attention aggregation, flash and block-sparse attention
// and the mask estimator, linear attention, the quantized KV cache's layout and quantized decode
// attention). Nothing here calls the code under test except to set up (the CPU path switch) and
// to read status messages.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
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
    template <typename Rng>
    void fill_normal(Rng &rng, double sigma = 1.0, double mean = 0.0) {
        std::normal_distribution<double> n(mean, sigma);
        for (int64_t i = 0; i < count(); ++i) set(offset_of_flat(i), n(rng));
    }
    bool all_finite() const {
        for (int64_t i = 0; i < count(); ++i)
            if (!std::isfinite(flat(i))) return false;
        return true;
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

// ---- float64 references: attention aggregation, flash and block-sparse attention ----

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

// Fresh inputs every run; the seed is printed so a failure can be replayed.
inline uint64_t fresh_seed() {
    static uint64_t base = (uint64_t)std::chrono::steady_clock::now().time_since_epoch().count();
    return base++;
}

// ||a - b|| / ||b|| over every element (b is the reference), both as float64 vectors; a non-finite a gives +inf.
inline double relative_error(const std::vector<double> &a, const std::vector<double> &b) {
    double num = 0, den = 0;
    for (size_t i = 0; i < a.size(); ++i) {
        if (!std::isfinite(a[i])) return INFINITY;
        num += (a[i] - b[i]) * (a[i] - b[i]);
        den += b[i] * b[i];
    }
    return den == 0 ? std::sqrt(num) : std::sqrt(num / den);
}

// Every element of a tensor, row-major, as float64.
inline std::vector<double> values(const HostTensor &b) {
    std::vector<double> v(b.count());
    for (int64_t i = 0; i < b.count(); ++i) v[i] = b.flat(i);
    return v;
}

// ---- linear attention, float64, token by token (the recurrence of heed/linear_attention.h) ----

inline double feature(double x, int map) { return map == HEED_LINEAR_FEATURE_ELU1 ? (x > 0 ? x + 1 : std::exp(x)) : x; }

struct LinearRef {
    std::vector<double> out;    // [B,H,N,dv]
    std::vector<double> state;  // [B,H,d,dv]
    std::vector<double> z;      // [B,H,d]
};

// state_in / z_in / decay may be null.
inline LinearRef linear_reference(const HostTensor &q, const HostTensor &k, const HostTensor &v, const HostTensor *decay, const HostTensor *state_in,
                                  const HostTensor *z_in, int map, bool normalize, double eps) {
    const int64_t B = q.shape[0], H = q.shape[1], N = q.shape[2], d = q.shape[3], dv = v.shape[3];
    LinearRef r;
    r.out.assign(B * H * N * dv, 0);
    r.state.assign(B * H * d * dv, 0);
    r.z.assign(B * H * d, 0);
    std::vector<double> qt(d), kt(d);
    for (int64_t b = 0; b < B; ++b)
        for (int64_t h = 0; h < H; ++h) {
            double lam = decay ? decay->at({h}) : 1.0;
            double *S = &r.state[(b * H + h) * d * dv];
            double *z = &r.z[(b * H + h) * d];
            for (int64_t i = 0; i < d; ++i) {
                if (z_in) z[i] = z_in->at({b, h, i});
                for (int64_t j = 0; j < dv; ++j) S[i * dv + j] = state_in ? state_in->at({b, h, i, j}) : 0.0;
            }
            for (int64_t t = 0; t < N; ++t) {
                for (int64_t i = 0; i < d; ++i) qt[i] = feature(q.at({b, h, t, i}), map), kt[i] = feature(k.at({b, h, t, i}), map);
                for (int64_t i = 0; i < d; ++i) {
                    z[i] = lam * z[i] + kt[i];
                    for (int64_t j = 0; j < dv; ++j) S[i * dv + j] = lam * S[i * dv + j] + kt[i] * v.at({b, h, t, j});
                }
                double den = 0;
                for (int64_t i = 0; i < d; ++i) den += qt[i] * z[i];
                if (std::fabs(den) < eps) den = den < 0 ? -eps : eps;
                for (int64_t j = 0; j < dv; ++j) {
                    double o = 0;
                    for (int64_t i = 0; i < d; ++i) o += qt[i] * S[i * dv + j];
                    r.out[((b * H + h) * N + t) * dv + j] = normalize ? o / den : o;
                }
            }
        }
    return r;
}

// ---- quantized cache in host memory ----

struct HostCache {
    heed_quant_kv c{};
    std::vector<std::vector<uint8_t>> mem;
    size_t bytes[HEED_QUANT_KV_TENSORS] = {};

    heed_tensor *tensors() { return &c.k_codes; }  // the ten tensors are consecutive members

    heed_status make(int64_t B, int64_t Hkv, int64_t N, int64_t d, int64_t dv, int bits, int group, int64_t S) {
        heed_status s = heed_quant_kv_sizes(B, Hkv, N, d, dv, bits, group, S, &c, bytes, nullptr);
        if (s != HEED_OK) return s;
        mem.resize(HEED_QUANT_KV_TENSORS);
        for (int i = 0; i < HEED_QUANT_KV_TENSORS; ++i) {
            mem[i].assign(bytes[i] + 1, 0xFF);  // +1: never a null pointer for an empty tensor; 0xFF poisons
            tensors()[i].data = mem[i].data();
        }
        return HEED_OK;
    }
    const uint16_t *half(int i) const { return reinterpret_cast<const uint16_t *>(mem[i].data()); }
    const int32_t *i32(int i) const { return reinterpret_cast<const int32_t *>(mem[i].data()); }
};

enum { T_KCODES, T_KSCALE, T_KZERO, T_VCODES, T_VSCALE, T_VZERO, T_SLOT, T_COUNT, T_SK, T_SV };

// The code of element c in a packed row, read from the layout heed/kv_quant.h documents.
inline int code_at(const uint8_t *row, int64_t c, int bits) {
    if (bits == 8) return row[c];
    if (bits == 4) return (row[c / 2] >> (4 * (c % 2))) & 15;
    return (row[c / 4] >> (2 * (c % 4))) & 3;
}

// float64 softmax attention of q rows [B,H,nq,d] over K/V [B,Hkv,N,d|dv] (GQA, causal aligned
// to the end): out [B,H,nq,dv].
inline std::vector<double> decode_reference(const HostTensor &q, const HostTensor &k, const HostTensor &v, bool causal, double scale) {
    const int64_t B = q.shape[0], H = q.shape[1], nq = q.shape[2], d = q.shape[3];
    const int64_t Hkv = k.shape[1], N = k.shape[2], dv = v.shape[3], group = H / Hkv;
    std::vector<double> out(B * H * nq * dv, 0), s(N);
    for (int64_t b = 0; b < B; ++b)
        for (int64_t h = 0; h < H; ++h)
            for (int64_t i = 0; i < nq; ++i) {
                const int64_t g = h / group, vis = causal ? N - nq + i + 1 : N;
                double m = -INFINITY;
                for (int64_t n = 0; n < vis; ++n) {
                    double acc = 0;
                    for (int64_t c = 0; c < d; ++c) acc += q.at({b, h, i, c}) * k.at({b, g, n, c});
                    s[n] = acc * scale;
                    m = std::max(m, s[n]);
                }
                double l = 0;
                for (int64_t n = 0; n < vis; ++n) l += std::exp(s[n] - m);
                for (int64_t c = 0; c < dv; ++c) {
                    double o = 0;
                    for (int64_t n = 0; n < vis; ++n) o += std::exp(s[n] - m) * v.at({b, g, n, c});
                    out[((b * H + h) * nq + i) * dv + c] = o / l;
                }
            }
    return out;
}

// Switches libheed's CPU kernels to the reference (1) or fast (0) path, and sets their thread
// count (0: every core), for one scope.
struct CpuPath {
    explicit CpuPath(int reference, int threads = 0) { heed_attention_cpu_config(reference, threads); }
    ~CpuPath() { heed_attention_cpu_config(0, 0); }
};

inline bool message_has(const char *needle) { return std::string(heed_last_error()).find(needle) != std::string::npos; }

}  // namespace heed_test
