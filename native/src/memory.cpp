// memory.cpp - where a pointer lives, and device memory helpers for callers without CUDA.
#include "error.hpp"
#include "heed/tensor.h"

#ifdef HEED_WITH_CUDA
#include <cuda_runtime.h>
#endif

namespace {
#ifdef HEED_WITH_CUDA
heed_status cuda_fail(cudaError_t err, const char *what) {
    cudaGetLastError();  // clear the sticky-free error so the next call starts clean
    if (err == cudaErrorMemoryAllocation)
        return heed::fail(HEED_ERR_OUT_OF_MEMORY, "%s: out of device memory", what);
    return heed::fail(HEED_ERR_CUDA, "%s: %s", what, cudaGetErrorString(err));
}
#endif
}  // namespace

extern "C" {

int32_t heed_built_with_cuda(void) {
#ifdef HEED_WITH_CUDA
    return 1;
#else
    return 0;
#endif
}

int32_t heed_cuda_device_count(void) {
#ifdef HEED_WITH_CUDA
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError();
        return 0;
    }
    return n;
#else
    return 0;
#endif
}

heed_status heed_memory_kind_of(const void *ptr, heed_memory_kind *kind, int32_t *device) {
    if (kind == nullptr || device == nullptr)
        return heed::fail(HEED_ERR_INVALID_ARGUMENT, "heed_memory_kind_of: kind and device must not be null");
    *kind = HEED_MEMORY_HOST;
    *device = -1;
#ifdef HEED_WITH_CUDA
    if (ptr != nullptr && heed_cuda_device_count() > 0) {
        cudaPointerAttributes attributes{};
        cudaError_t err = cudaPointerGetAttributes(&attributes, ptr);
        if (err != cudaSuccess) {
            cudaGetLastError();
        } else if (attributes.type == cudaMemoryTypeDevice || attributes.type == cudaMemoryTypeManaged) {
            *kind = HEED_MEMORY_CUDA;
            *device = attributes.device;
        }
    }
#else
    (void)ptr;
#endif
    return heed::ok();
}

heed_status heed_cuda_malloc(int32_t device, size_t bytes, void **ptr) {
    if (ptr == nullptr) return heed::fail(HEED_ERR_INVALID_ARGUMENT, "heed_cuda_malloc: ptr must not be null");
    *ptr = nullptr;
    if (bytes == 0) return heed::fail(HEED_ERR_INVALID_ARGUMENT, "heed_cuda_malloc: bytes must be > 0");
#ifdef HEED_WITH_CUDA
    if (device < 0 || device >= heed_cuda_device_count())
        return heed::fail(HEED_ERR_NO_CUDA, "heed_cuda_malloc: no CUDA device %d (found %d)", device, heed_cuda_device_count());
    cudaError_t err = cudaSetDevice(device);
    if (err != cudaSuccess) return cuda_fail(err, "cudaSetDevice");
    err = cudaMalloc(ptr, bytes);
    if (err != cudaSuccess) return cuda_fail(err, "cudaMalloc");
    return heed::ok();
#else
    (void)device;
    return heed::fail(HEED_ERR_NO_CUDA, "this libheed was built without CUDA");
#endif
}

heed_status heed_cuda_free(void *ptr) {
#ifdef HEED_WITH_CUDA
    if (ptr == nullptr) return heed::ok();
    cudaError_t err = cudaFree(ptr);
    if (err != cudaSuccess) return cuda_fail(err, "cudaFree");
    return heed::ok();
#else
    if (ptr == nullptr) return heed::ok();
    return heed::fail(HEED_ERR_NO_CUDA, "this libheed was built without CUDA");
#endif
}

heed_status heed_cuda_memcpy(void *dst, const void *src, size_t bytes, int32_t kind) {
    if ((dst == nullptr || src == nullptr) && bytes > 0)
        return heed::fail(HEED_ERR_INVALID_ARGUMENT, "heed_cuda_memcpy: dst and src must not be null");
    if (kind < 0 || kind > 2)
        return heed::fail(HEED_ERR_INVALID_ARGUMENT, "heed_cuda_memcpy: kind must be 0 (to device), 1 (to host) or 2 (device to device), got %d", kind);
#ifdef HEED_WITH_CUDA
    static const cudaMemcpyKind kinds[] = {cudaMemcpyHostToDevice, cudaMemcpyDeviceToHost, cudaMemcpyDeviceToDevice};
    cudaError_t err = cudaMemcpy(dst, src, bytes, kinds[kind]);
    if (err != cudaSuccess) return cuda_fail(err, "cudaMemcpy");
    return heed::ok();
#else
    return heed::fail(HEED_ERR_NO_CUDA, "this libheed was built without CUDA");
#endif
}

heed_status heed_cuda_synchronize(int32_t device) {
#ifdef HEED_WITH_CUDA
    if (device < 0 || device >= heed_cuda_device_count())
        return heed::fail(HEED_ERR_NO_CUDA, "no CUDA device %d", device);
    cudaError_t err = cudaSetDevice(device);
    if (err == cudaSuccess) err = cudaDeviceSynchronize();
    if (err != cudaSuccess) return cuda_fail(err, "cudaDeviceSynchronize");
    return heed::ok();
#else
    (void)device;
    return heed::fail(HEED_ERR_NO_CUDA, "this libheed was built without CUDA");
#endif
}

heed_status heed_cuda_device_info(int32_t device, char *name, size_t name_capacity, size_t *total_memory,
                                  int32_t *compute_major, int32_t *compute_minor) {
    if (name == nullptr || name_capacity == 0 || total_memory == nullptr || compute_major == nullptr ||
        compute_minor == nullptr)
        return heed::fail(HEED_ERR_INVALID_ARGUMENT, "heed_cuda_device_info: no argument may be null or empty");
#ifdef HEED_WITH_CUDA
    if (device < 0 || device >= heed_cuda_device_count())
        return heed::fail(HEED_ERR_NO_CUDA, "no CUDA device %d", device);
    cudaDeviceProp prop{};
    cudaError_t err = cudaGetDeviceProperties(&prop, device);
    if (err != cudaSuccess) return cuda_fail(err, "cudaGetDeviceProperties");
    size_t n = 0;
    for (; n + 1 < name_capacity && prop.name[n] != '\0'; ++n) name[n] = prop.name[n];
    name[n] = '\0';
    *total_memory = prop.totalGlobalMem;
    *compute_major = prop.major;
    *compute_minor = prop.minor;
    return heed::ok();
#else
    (void)device;
    name[0] = '\0';
    *total_memory = 0;
    *compute_major = *compute_minor = 0;
    return heed::fail(HEED_ERR_NO_CUDA, "this libheed was built without CUDA");
#endif
}

}  // extern "C"
