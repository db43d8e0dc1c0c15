// linear_kv_cuda.hpp - CUDA entry points of linear attention, KV quantization and quantized
// decode attention. linear_kv_api.cpp validates the arguments and calls these only for
// tensors in device memory, in CUDA builds.
#pragma once

#include "cpu/linear_kv_cpu.hpp"

namespace heed::linear_kv {

heed_status linear_attention_cuda(const linear_args &a, int device);
heed_status kv_quantize_cuda(const quantize_args &a, int device);
heed_status kv_dequantize_cuda(const dequantize_args &a, int device);
heed_status quant_decode_cuda(const decode_args &a, int device);

}  // namespace heed::linear_kv

#ifdef __CUDACC__
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "cuda/cuda_check.hpp"

namespace heed::linear_kv {

// A heed_tensor as a kernel sees it: data, dtype and effective strides (elements).
struct dview {
    void *data;
    int dtype;
    int64_t s[4];
};

inline dview make_view(const heed_tensor *t) {
    dview v{};
    if (t == nullptr) return v;
    v.data = t->data;
    v.dtype = t->dtype;
    for (int d = 0; d < t->ndim && d < 4; ++d) v.s[d] = stride_at(*t, d);
    return v;
}

__device__ __forceinline__ float dload(const dview &v, int64_t off) {
    switch (v.dtype) {
        case HEED_F16: return __half2float(static_cast<const __half *>(v.data)[off]);
        case HEED_BF16: return __bfloat162float(static_cast<const __nv_bfloat16 *>(v.data)[off]);
        default: return static_cast<const float *>(v.data)[off];
    }
}

__device__ __forceinline__ void dstore(const dview &v, int64_t off, float x) {
    switch (v.dtype) {
        case HEED_F16: static_cast<__half *>(v.data)[off] = __float2half_rn(x); break;
        case HEED_BF16: static_cast<__nv_bfloat16 *>(v.data)[off] = __float2bfloat16_rn(x); break;
        default: static_cast<float *>(v.data)[off] = x; break;
    }
}

// Makes `device` current for the scope of a call and restores the caller's device after.
struct device_scope {
    int previous = -1;
    cudaError_t err = cudaSuccess;
    explicit device_scope(int device) {
        if (cudaGetDevice(&previous) != cudaSuccess) previous = -1;
        if (previous != device) err = cudaSetDevice(device);
    }
    ~device_scope() {
        if (previous >= 0) cudaSetDevice(previous);
    }
};

}  // namespace heed::linear_kv
#endif  // __CUDACC__
