// reference_linear_kv.hpp - host buffers, random inputs and float64 references for the linear
// attention, KV quantization and quantized decode tests.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "heed.h"
#include "tensor_view.hpp"

namespace lkv_test {

// A host tensor: contiguous, or with `pad` unused elements after each innermost row.
struct Buf {
    int32_t dtype = HEED_F32;
    std::vector<int64_t> shape, strides;
    std::vector<uint8_t> bytes;

    Buf() = default;
    Buf(int32_t dt, std::vector<int64_t> shp, int64_t pad = 0) : dtype(dt), shape(std::move(shp)) {
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
        for (size_t d = 0; d < shape.size(); ++d) t.shape[d] = shape[d], t.strides[d] = strides[d];
        return t;
    }
    int64_t off(std::initializer_list<int64_t> idx) const {
        int64_t o = 0, d = 0;
        for (auto i : idx) o += i * strides[d++];
        return o;
    }
    int64_t flat_off(int64_t flat) const {
        int64_t o = 0;
        for (int d = (int)shape.size() - 1; d >= 0; --d) o += (flat % shape[d]) * strides[d], flat /= shape[d];
        return o;
    }
    double get(int64_t o) const {
        heed_tensor t{};
        t.data = const_cast<uint8_t *>(bytes.data());
        t.dtype = dtype;
        return heed::load_f32(t, o);
    }
    void set(int64_t o, double v) {
        heed_tensor t{};
        t.data = bytes.data();
        t.dtype = dtype;
        heed::store_f32(t, o, (float)v);
    }
    double at(std::initializer_list<int64_t> idx) const { return get(off(idx)); }
    // NaN in every float element (0xFF bytes: NaN for f32, f16 and bf16).
    void poison() { std::fill(bytes.begin(), bytes.end(), 0xFF); }
    bool all_finite() const {
        for (int64_t i = 0; i < count(); ++i)
            if (!std::isfinite(get(flat_off(i)))) return false;
        return true;
    }
};

// Fresh inputs every run; the seed is printed so a failure can be replayed.
inline uint64_t fresh_seed() {
    static uint64_t base = (uint64_t)std::chrono::steady_clock::now().time_since_epoch().count();
    return base++;
}

inline void fill_normal(Buf &b, std::mt19937_64 &rng, double sigma = 1.0, double mean = 0.0) {
    std::normal_distribution<double> dist(mean, sigma);
    for (int64_t i = 0; i < b.count(); ++i) b.set(b.flat_off(i), dist(rng));
}

// ||a - b|| / ||b|| over every element (b is the reference), both as float64 vectors.
inline double rel_error(const std::vector<double> &a, const std::vector<double> &b) {
    double num = 0, den = 0;
    for (size_t i = 0; i < a.size(); ++i) {
        if (!std::isfinite(a[i])) return INFINITY;
        num += (a[i] - b[i]) * (a[i] - b[i]);
        den += b[i] * b[i];
    }
    return den == 0 ? std::sqrt(num) : std::sqrt(num / den);
}

inline std::vector<double> values(const Buf &b) {
    std::vector<double> v(b.count());
    for (int64_t i = 0; i < b.count(); ++i) v[i] = b.get(b.flat_off(i));
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
inline LinearRef linear_reference(const Buf &q, const Buf &k, const Buf &v, const Buf *decay, const Buf *state_in,
                                  const Buf *z_in, int map, bool normalize, double eps) {
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
inline std::vector<double> decode_reference(const Buf &q, const Buf &k, const Buf &v, bool causal, double scale) {
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

// Switches libheed's CPU kernels to the reference (1) or fast (0) path for one scope.
struct CpuPath {
    explicit CpuPath(int reference, int threads = 0) { heed_attention_cpu_config(reference, threads); }
    ~CpuPath() { heed_attention_cpu_config(0, 0); }
};

inline bool message_has(const char *needle) { return std::string(heed_last_error()).find(needle) != std::string::npos; }

}  // namespace lkv_test
