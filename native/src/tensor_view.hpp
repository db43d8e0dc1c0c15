// tensor_view.hpp - checks a heed_tensor and reads its elements, shared by every kernel.
//
// Kernels validate every tensor with check_tensor() before touching memory, then find where
// the call runs with placement_of(). Elements are read as float through load_f32(), which
// converts f16/bf16 (fp32 accumulation everywhere).
#pragma once

#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <string>

#include "error.hpp"
#include "heed/tensor.h"

namespace heed {

// Bytes per element, or 0 for packed sub-byte types (HEED_U4, HEED_U2) and unknown dtypes.
inline size_t dtype_size(int32_t dtype) {
    switch (dtype) {
        case HEED_F32: case HEED_I32: return 4;
        case HEED_F16: case HEED_BF16: return 2;
        case HEED_I8: case HEED_U8: return 1;
        default: return 0;
    }
}

inline bool dtype_known(int32_t dtype) { return dtype >= HEED_F32 && dtype <= HEED_U8; }

inline const char *dtype_name(int32_t dtype) {
    static const char *names[] = {"f32", "f16", "bf16", "i8", "u4", "u2", "i32", "u8"};
    return dtype_known(dtype) ? names[dtype] : "unknown";
}

// Effective stride of dimension d in elements (zero strides mean contiguous row-major).
inline int64_t stride_of(const heed_tensor &t, int d) {
    bool all_zero = true;
    for (int i = 0; i < t.ndim; ++i) all_zero = all_zero && t.strides[i] == 0;
    if (!all_zero) return t.strides[d];
    int64_t s = 1;
    for (int i = t.ndim - 1; i > d; --i) s *= t.shape[i];
    return s;
}

inline int64_t element_count(const heed_tensor &t) {
    int64_t n = 1;
    for (int i = 0; i < t.ndim; ++i) n *= t.shape[i];
    return n;
}

inline bool is_contiguous(const heed_tensor &t) {
    int64_t expected = 1;
    for (int d = t.ndim - 1; d >= 0; --d) {
        if (t.shape[d] != 1 && stride_of(t, d) != expected) return false;
        expected *= t.shape[d];
    }
    return true;
}

// Validates one tensor argument: non-null descriptor and data, known dtype, ndim as required,
// positive shape (or zero where allow_empty), non-negative strides, packed types contiguous.
// `name` names the argument in the message, e.g. "q".
inline heed_status check_tensor(const heed_tensor *t, const char *name, int ndim,
                                std::initializer_list<int32_t> dtypes, bool allow_empty = false) {
    if (t == nullptr) return fail(HEED_ERR_INVALID_ARGUMENT, "%s: tensor descriptor is null", name);
    if (!dtype_known(t->dtype)) return fail(HEED_ERR_INVALID_ARGUMENT, "%s: unknown dtype %d", name, t->dtype);
    bool allowed = false;
    for (int32_t d : dtypes) allowed = allowed || d == t->dtype;
    if (!allowed) {
        std::string list;
        for (int32_t d : dtypes) list += std::string(list.empty() ? "" : ", ") + dtype_name(d);
        return fail(HEED_ERR_INVALID_ARGUMENT, "%s: dtype %s is not accepted here (use %s)", name, dtype_name(t->dtype), list.c_str());
    }
    if (t->ndim != ndim) return fail(HEED_ERR_INVALID_ARGUMENT, "%s: expected %d dimensions, got %d", name, ndim, t->ndim);
    for (int d = 0; d < t->ndim; ++d) {
        if (t->shape[d] < 0 || (t->shape[d] == 0 && !allow_empty))
            return fail(HEED_ERR_INVALID_ARGUMENT, "%s: shape[%d] = %lld must be positive", name, d, (long long)t->shape[d]);
        if (t->strides[d] < 0)
            return fail(HEED_ERR_INVALID_ARGUMENT, "%s: strides[%d] = %lld must not be negative", name, d, (long long)t->strides[d]);
    }
    if (t->data == nullptr && element_count(*t) > 0) return fail(HEED_ERR_INVALID_ARGUMENT, "%s: data is null", name);
    if ((t->dtype == HEED_U4 || t->dtype == HEED_U2) && !is_contiguous(*t))
        return fail(HEED_ERR_INVALID_ARGUMENT, "%s: packed %s tensors must be contiguous", name, dtype_name(t->dtype));
    return HEED_OK;
}

// Where a call runs: every tensor must live in host memory, or all on the same CUDA device.
struct placement {
    bool cuda = false;
    int device = -1;
};

inline heed_status placement_of(std::initializer_list<const heed_tensor *> tensors, placement *out) {
    bool first = true;
    for (const heed_tensor *t : tensors) {
        if (t == nullptr || t->data == nullptr) continue;
        heed_memory_kind kind;
        int32_t device;
        heed_status s = heed_memory_kind_of(t->data, &kind, &device);
        if (s != HEED_OK) return s;
        bool cuda = kind == HEED_MEMORY_CUDA;
        if (first) {
            out->cuda = cuda;
            out->device = device;
            first = false;
        } else if (cuda != out->cuda || device != out->device) {
            return fail(HEED_ERR_INVALID_ARGUMENT, "tensors of one call live in different memories (host vs CUDA device, or two devices)");
        }
    }
#ifndef HEED_WITH_CUDA
    if (out->cuda) return fail(HEED_ERR_NO_CUDA, "device memory given to a libheed built without CUDA");
#endif
    return HEED_OK;
}

inline float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t mant = h & 0x3ff;
    uint32_t bits;
    if (exp == 0) {
        if (mant == 0) {
            bits = sign;
        } else {  // subnormal: renormalize
            int e = -1;
            do { mant <<= 1; ++e; } while ((mant & 0x400) == 0);
            bits = sign | (uint32_t)(127 - 15 - e) << 23 | (mant & 0x3ff) << 13;
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | mant << 13;
    } else {
        bits = sign | (exp + 127 - 15) << 23 | mant << 13;
    }
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}

inline uint16_t float_to_half(float f) {  // round to nearest even
    uint32_t x;
    std::memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000;
    int32_t exp = (int32_t)((x >> 23) & 0xff) - 127 + 15;
    uint32_t mant = x & 0x7fffff;
    if (((x >> 23) & 0xff) == 0xff) return (uint16_t)(sign | 0x7c00 | (mant ? 0x200 : 0));
    if (exp >= 31) return (uint16_t)(sign | 0x7c00);
    if (exp <= 0) {
        if (exp < -10) return (uint16_t)sign;
        mant |= 0x800000;
        uint32_t shift = (uint32_t)(14 - exp);
        uint32_t half = mant >> shift;
        uint32_t rem = mant & ((1u << shift) - 1);
        uint32_t mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1))) ++half;
        return (uint16_t)(sign | half);
    }
    uint32_t half = sign | (uint32_t)exp << 10 | mant >> 13;
    uint32_t rem = mant & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (half & 1))) ++half;
    return (uint16_t)half;
}

inline float bf16_to_float(uint16_t b) {
    uint32_t bits = (uint32_t)b << 16;
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}

inline uint16_t float_to_bf16(float f) {  // round to nearest even
    uint32_t x;
    std::memcpy(&x, &f, 4);
    if ((x & 0x7fffffff) > 0x7f800000) return (uint16_t)((x >> 16) | 0x40);
    x += 0x7fff + ((x >> 16) & 1);
    return (uint16_t)(x >> 16);
}

// Element i (a flat offset in elements, strides already applied) of an f32/f16/bf16 tensor.
inline float load_f32(const heed_tensor &t, int64_t offset) {
    switch (t.dtype) {
        case HEED_F32: return static_cast<const float *>(t.data)[offset];
        case HEED_F16: return half_to_float(static_cast<const uint16_t *>(t.data)[offset]);
        case HEED_BF16: return bf16_to_float(static_cast<const uint16_t *>(t.data)[offset]);
        default: return 0.0f;
    }
}

inline void store_f32(const heed_tensor &t, int64_t offset, float v) {
    switch (t.dtype) {
        case HEED_F32: static_cast<float *>(t.data)[offset] = v; break;
        case HEED_F16: static_cast<uint16_t *>(t.data)[offset] = float_to_half(v); break;
        case HEED_BF16: static_cast<uint16_t *>(t.data)[offset] = float_to_bf16(v); break;
        default: break;
    }
}

}  // namespace heed
