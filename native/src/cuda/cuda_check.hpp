// cuda_check.hpp - turns a cudaError_t into a heed status with a message naming the call.
#pragma once

#include <cuda_runtime.h>

#include "error.hpp"

namespace heed {

// Clears the sticky last error so the next call starts clean; allocation failures are
// HEED_ERR_OUT_OF_MEMORY, everything else HEED_ERR_CUDA.
inline heed_status cuda_status(cudaError_t err, const char *what) {
    if (err == cudaSuccess) return HEED_OK;
    cudaGetLastError();
    if (err == cudaErrorMemoryAllocation)
        return fail(HEED_ERR_OUT_OF_MEMORY, "%s: out of device memory", what);
    return fail(HEED_ERR_CUDA, "%s: %s", what, cudaGetErrorString(err));
}

}  // namespace heed

// Returns from the enclosing function (which returns heed_status) when a CUDA call fails.
#define HEED_CUDA_CHECK(call)                                                    \
    do {                                                                         \
        cudaError_t heed_cuda_err_ = (call);                                     \
        if (heed_cuda_err_ != cudaSuccess) return ::heed::cuda_status(heed_cuda_err_, #call); \
    } while (0)

// After a kernel launch: a bad configuration shows up in cudaGetLastError().
#define HEED_CUDA_CHECK_LAUNCH(name)                                             \
    do {                                                                         \
        cudaError_t heed_cuda_err_ = cudaGetLastError();                         \
        if (heed_cuda_err_ != cudaSuccess) return ::heed::cuda_status(heed_cuda_err_, name); \
    } while (0)
