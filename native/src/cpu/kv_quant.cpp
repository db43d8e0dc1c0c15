// kv_quant.cpp - KV cache quantization and dequantization on the CPU (layout: heed/kv_quant.h).
//
// K per channel over groups of g tokens, V per token over groups of g channels, salient tokens
// copied to fp16 and left out of the statistics. The reference path runs (batch, kv head)
// pairs on one thread, the fast path spreads them over threads; both share the arithmetic
// below, so they agree bit for bit (the same arithmetic as the CUDA path).
#include <cmath>
#include <cstring>
#include <vector>

#include "cpu/linear_kv_cpu.hpp"
#include "cpu/parallel_for.hpp"
#include "tensor_view.hpp"

namespace heed::linear_kv {

uint16_t half_round_down(float x) {
    uint16_t h = float_to_half(x);
    if (half_to_float(h) > x) {
        if (h == 0x0000) return 0x8001;  // +0 -> the negative subnormal closest to 0
        h = (h & 0x8000) ? (uint16_t)(h + 1) : (uint16_t)(h - 1);
    }
    return h;
}

uint16_t half_round_up(float x) {
    uint16_t h = float_to_half(x);
    if (half_to_float(h) < x) {
        if (h == 0x8000) return 0x0001;
        h = (h & 0x8000) ? (uint16_t)(h - 1) : (uint16_t)(h + 1);
    }
    return h;
}

namespace {

struct group_params {
    uint16_t scale_h, zero_h;
    float scale, zero;
};

// zero = lo rounded down, scale = (hi - zero) / qmax rounded up, both to fp16 (see kv_quant.h).
group_params make_group(float lo, float hi, int qmax) {
    group_params p{};
    if (!(lo <= hi)) return p;  // no element (or NaN): scale 0, zero 0
    p.zero_h = half_round_down(lo);
    p.zero = half_to_float(p.zero_h);
    double r = ((double)hi - (double)p.zero) / qmax;
    float rf = (float)r;
    if ((double)rf < r) rf = std::nextafter(rf, INFINITY);
    p.scale_h = half_round_up(rf);
    p.scale = half_to_float(p.scale_h);
    return p;
}

inline uint8_t quantize_one(float x, const group_params &p, int qmax) {
    if (p.scale == 0.0f) return 0;
    float v = std::nearbyint((x - p.zero) / p.scale);
    v = std::fmin(std::fmax(v, 0.0f), (float)qmax);  // fmax/fmin also turn NaN into 0
    return (uint8_t)v;
}

inline void pack_code(uint8_t *row, int64_t c, uint8_t q, int bits) {
    if (bits == 8) row[c] = q;
    else if (bits == 4) row[c >> 1] |= (uint8_t)(q << (4 * (c & 1)));
    else row[c >> 2] |= (uint8_t)(q << (2 * (c & 3)));
}

inline uint8_t unpack_code(const uint8_t *row, int64_t c, int bits) {
    if (bits == 8) return row[c];
    if (bits == 4) return (row[c >> 1] >> (4 * (c & 1))) & 0xF;
    return (row[c >> 2] >> (2 * (c & 3))) & 0x3;
}

inline int64_t off4(const heed_tensor &t, int64_t a, int64_t b, int64_t c, int64_t d) {
    return a * stride_at(t, 0) + b * stride_at(t, 1) + c * stride_at(t, 2) + d * stride_at(t, 3);
}

inline int64_t mask_offset(const heed_tensor &m, int64_t b, int64_t n) {
    return m.ndim == 1 ? n * stride_at(m, 0) : b * stride_at(m, 0) + n * stride_at(m, 1);
}

void quantize_pair(const quantize_args &a, int64_t b, int64_t h) {
    const quant_dims &D = a.dims;
    const heed_quant_kv &c = *a.cache;
    const int bits = D.bits, qmax = (1 << bits) - 1;
    const int64_t g = D.group;
    const int32_t *slot = static_cast<const int32_t *>(c.salient_slot.data) + b * D.N;
    auto *kcodes = static_cast<uint8_t *>(c.k_codes.data);
    auto *vcodes = static_cast<uint8_t *>(c.v_codes.data);
    auto *kscale = static_cast<uint16_t *>(c.k_scale.data);
    auto *kzero = static_cast<uint16_t *>(c.k_zero.data);
    auto *vscale = static_cast<uint16_t *>(c.v_scale.data);
    auto *vzero = static_cast<uint16_t *>(c.v_zero.data);
    const int64_t krow = D.d * bits / 8, vrow = D.dv * bits / 8;
    const int64_t pair = b * D.Hkv + h;

    // K: per channel, groups of g tokens.
    std::vector<float> lo(D.d), hi(D.d);
    std::vector<group_params> gp(D.d);
    for (int64_t j = 0; j < D.k_groups(); ++j) {
        const int64_t n0 = j * g, n1 = std::min(D.N, n0 + g);
        std::fill(lo.begin(), lo.end(), INFINITY);
        std::fill(hi.begin(), hi.end(), -INFINITY);
        for (int64_t n = n0; n < n1; ++n) {
            if (slot[n] >= 0) continue;
            for (int64_t ch = 0; ch < D.d; ++ch) {
                float x = load_f32(*a.k, off4(*a.k, b, h, n, ch));
                lo[ch] = std::fmin(lo[ch], x);
                hi[ch] = std::fmax(hi[ch], x);
            }
        }
        const int64_t srow = (pair * D.k_groups() + j) * D.d;
        for (int64_t ch = 0; ch < D.d; ++ch) {
            gp[ch] = make_group(lo[ch], hi[ch], qmax);
            kscale[srow + ch] = gp[ch].scale_h;
            kzero[srow + ch] = gp[ch].zero_h;
        }
        for (int64_t n = n0; n < n1; ++n) {
            uint8_t *row = kcodes + (pair * D.N + n) * krow;
            std::memset(row, 0, krow);
            if (slot[n] >= 0) continue;
            for (int64_t ch = 0; ch < D.d; ++ch)
                pack_code(row, ch, quantize_one(load_f32(*a.k, off4(*a.k, b, h, n, ch)), gp[ch], qmax), bits);
        }
    }

    // V: per token, groups of g channels.
    std::vector<float> x(D.dv);
    for (int64_t n = 0; n < D.N; ++n) {
        uint8_t *row = vcodes + (pair * D.N + n) * vrow;
        std::memset(row, 0, vrow);
        const int64_t srow = (pair * D.N + n) * D.v_groups();
        const bool salient = slot[n] >= 0;
        for (int64_t ch = 0; ch < D.dv; ++ch) x[ch] = load_f32(*a.v, off4(*a.v, b, h, n, ch));
        for (int64_t gi = 0; gi < D.v_groups(); ++gi) {
            const int64_t c0 = gi * g, c1 = std::min(D.dv, c0 + g);
            float l = INFINITY, u = -INFINITY;
            if (!salient)
                for (int64_t ch = c0; ch < c1; ++ch) l = std::fmin(l, x[ch]), u = std::fmax(u, x[ch]);
            group_params p = make_group(l, u, qmax);
            vscale[srow + gi] = p.scale_h;
            vzero[srow + gi] = p.zero_h;
            if (!salient)
                for (int64_t ch = c0; ch < c1; ++ch) pack_code(row, ch, quantize_one(x[ch], p, qmax), bits);
        }
    }

    // Salient rows at fp16 (unused rows zero).
    auto *sk = static_cast<uint16_t *>(c.salient_k.data);
    auto *sv = static_cast<uint16_t *>(c.salient_v.data);
    if (D.S > 0) {
        std::memset(sk + pair * D.S * D.d, 0, D.S * D.d * 2);
        std::memset(sv + pair * D.S * D.dv, 0, D.S * D.dv * 2);
    }
    for (int64_t n = 0; n < D.N; ++n) {
        if (slot[n] < 0) continue;
        for (int64_t ch = 0; ch < D.d; ++ch)
            sk[(pair * D.S + slot[n]) * D.d + ch] = float_to_half(load_f32(*a.k, off4(*a.k, b, h, n, ch)));
        for (int64_t ch = 0; ch < D.dv; ++ch)
            sv[(pair * D.S + slot[n]) * D.dv + ch] = float_to_half(load_f32(*a.v, off4(*a.v, b, h, n, ch)));
    }
}

void dequantize_pair(const dequantize_args &a, int64_t b, int64_t h) {
    const quant_dims &D = a.dims;
    std::vector<float> kr(D.d), vr(D.dv);
    for (int64_t n = 0; n < D.N; ++n) {
        if (a.k_out) {
            dequant_k_row(*a.cache, D, b, h, n, kr.data());
            for (int64_t ch = 0; ch < D.d; ++ch) store_f32(*a.k_out, off4(*a.k_out, b, h, n, ch), kr[ch]);
        }
        if (a.v_out) {
            dequant_v_row(*a.cache, D, b, h, n, vr.data());
            for (int64_t ch = 0; ch < D.dv; ++ch) store_f32(*a.v_out, off4(*a.v_out, b, h, n, ch), vr[ch]);
        }
    }
}

template <typename Fn>
void for_pairs(const quant_dims &D, Fn fn) {
    const int64_t pairs = D.B * D.Hkv;
    if (cpu::settings().reference.load() != 0) {
        for (int64_t p = 0; p < pairs; ++p) fn(p / D.Hkv, p % D.Hkv);
        return;
    }
    cpu::parallel_for(pairs, 1, [&](int64_t lo, int64_t hi) {
        for (int64_t p = lo; p < hi; ++p) fn(p / D.Hkv, p % D.Hkv);
    });
}

}  // namespace


// One token's K (or V) row, dequantized: the fp16 copy for a salient token, else fma(q, scale, zero).
void dequant_k_row(const heed_quant_kv &c, const quant_dims &D, int64_t b, int64_t h, int64_t n, float *out) {
    const int64_t pair = b * D.Hkv + h;
    const int32_t raw = static_cast<const int32_t *>(c.salient_slot.data)[b * D.N + n];
    const int32_t s = raw < D.S ? raw : -1;  // a corrupt slot map reads no foreign memory
    if (s >= 0) {
        const auto *sk = static_cast<const uint16_t *>(c.salient_k.data) + (pair * D.S + s) * D.d;
        for (int64_t ch = 0; ch < D.d; ++ch) out[ch] = half_to_float(sk[ch]);
        return;
    }
    const uint8_t *row = static_cast<const uint8_t *>(c.k_codes.data) + (pair * D.N + n) * (D.d * D.bits / 8);
    const int64_t srow = (pair * D.k_groups() + n / D.group) * D.d;
    const auto *sc = static_cast<const uint16_t *>(c.k_scale.data) + srow;
    const auto *ze = static_cast<const uint16_t *>(c.k_zero.data) + srow;
    for (int64_t ch = 0; ch < D.d; ++ch)
        out[ch] = std::fma((float)unpack_code(row, ch, D.bits), half_to_float(sc[ch]), half_to_float(ze[ch]));
}

void dequant_v_row(const heed_quant_kv &c, const quant_dims &D, int64_t b, int64_t h, int64_t n, float *out) {
    const int64_t pair = b * D.Hkv + h;
    const int32_t raw = static_cast<const int32_t *>(c.salient_slot.data)[b * D.N + n];
    const int32_t s = raw < D.S ? raw : -1;
    if (s >= 0) {
        const auto *sv = static_cast<const uint16_t *>(c.salient_v.data) + (pair * D.S + s) * D.dv;
        for (int64_t ch = 0; ch < D.dv; ++ch) out[ch] = half_to_float(sv[ch]);
        return;
    }
    const uint8_t *row = static_cast<const uint8_t *>(c.v_codes.data) + (pair * D.N + n) * (D.dv * D.bits / 8);
    const int64_t srow = (pair * D.N + n) * D.v_groups();
    const auto *sc = static_cast<const uint16_t *>(c.v_scale.data) + srow;
    const auto *ze = static_cast<const uint16_t *>(c.v_zero.data) + srow;
    for (int64_t gi = 0; gi < D.v_groups(); ++gi) {
        const float scale = half_to_float(sc[gi]), zero = half_to_float(ze[gi]);
        const int64_t c1 = std::min(D.dv, (gi + 1) * (int64_t)D.group);
        for (int64_t ch = gi * D.group; ch < c1; ++ch) out[ch] = std::fma((float)unpack_code(row, ch, D.bits), scale, zero);
    }
}

heed_status kv_quantize_cpu(const quantize_args &a) {
    const quant_dims &D = a.dims;
    const heed_quant_kv &c = *a.cache;
    auto *slot = static_cast<int32_t *>(c.salient_slot.data);
    auto *count = static_cast<int32_t *>(c.salient_count.data);
    // Salient slots first: they decide which tokens the statistics skip.
    for (int64_t b = 0; b < D.B; ++b) {
        int64_t n_salient = 0;
        for (int64_t n = 0; n < D.N; ++n) {
            bool salient = a.mask && static_cast<const uint8_t *>(a.mask->data)[mask_offset(*a.mask, b, n)] != 0;
            slot[b * D.N + n] = salient ? (int32_t)n_salient++ : -1;
        }
        if (n_salient > D.S)
            return fail(HEED_ERR_INVALID_ARGUMENT,
                        "salient_mask: batch item %lld has %lld salient tokens, more than the cache's salient capacity %lld",
                        (long long)b, (long long)n_salient, (long long)D.S);
        count[b] = (int32_t)n_salient;
    }
    for_pairs(D, [&](int64_t b, int64_t h) { quantize_pair(a, b, h); });
    return ok();
}

heed_status kv_dequantize_cpu(const dequantize_args &a) {
    for_pairs(a.dims, [&](int64_t b, int64_t h) { dequantize_pair(a, b, h); });
    return ok();
}

}  // namespace heed::linear_kv
