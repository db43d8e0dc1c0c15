/* heed/tensor.h - the tensor descriptor every kernel takes, and device memory helpers.
 *
 * A heed_tensor describes memory the caller owns; libheed never frees it. Where the data
 * lives decides where a kernel runs: host memory runs on the CPU, CUDA device memory on that
 * device (checked with cudaPointerGetAttributes). A CPU-only build answers HEED_ERR_NO_CUDA
 * for device memory. All tensors of one call must live on the same device. */
#ifndef HEED_TENSOR_H
#define HEED_TENSOR_H

#include "status.h"

HEED_EXTERN_C_BEGIN

typedef enum heed_dtype {
    HEED_F32 = 0,
    HEED_F16 = 1,  /* IEEE half */
    HEED_BF16 = 2, /* bfloat16 */
    HEED_I8 = 3,   /* signed 8-bit */
    HEED_U4 = 4,   /* unsigned 4-bit codes, two per byte, element 2i in the low nibble */
    HEED_U2 = 5,   /* unsigned 2-bit codes, four per byte, element 4i in the lowest bits */
    HEED_I32 = 6,
    HEED_U8 = 7    /* unsigned 8-bit (masks, 8-bit codes) */
} heed_dtype;

#define HEED_MAX_DIMS 4

/* shape[0] is the outermost dimension. strides are in elements, not bytes; a tensor whose
 * strides are all zero is contiguous (row-major). Packed dtypes (HEED_U4, HEED_U2) must be
 * contiguous and their innermost size a multiple of the codes per byte. */
typedef struct heed_tensor {
    void *data;
    int32_t dtype; /* heed_dtype */
    int32_t ndim;  /* 1..HEED_MAX_DIMS */
    int64_t shape[HEED_MAX_DIMS];
    int64_t strides[HEED_MAX_DIMS];
} heed_tensor;

typedef enum heed_memory_kind {
    HEED_MEMORY_HOST = 0,
    HEED_MEMORY_CUDA = 1
} heed_memory_kind;

/* Where a pointer lives. Always HEED_MEMORY_HOST in a CPU-only build. */
HEED_API heed_status heed_memory_kind_of(const void *ptr, heed_memory_kind *kind, int32_t *device);

/* Device memory for callers without a CUDA runtime of their own. */
HEED_API heed_status heed_cuda_malloc(int32_t device, size_t bytes, void **ptr);
HEED_API heed_status heed_cuda_free(void *ptr);
/* kind: 0 host->device, 1 device->host, 2 device->device. Synchronous. */
HEED_API heed_status heed_cuda_memcpy(void *dst, const void *src, size_t bytes, int32_t kind);
HEED_API heed_status heed_cuda_synchronize(int32_t device);
/* name: at least 256 bytes. */
HEED_API heed_status heed_cuda_device_info(int32_t device, char *name, size_t name_capacity,
                                           size_t *total_memory, int32_t *compute_major,
                                           int32_t *compute_minor);

HEED_EXTERN_C_END

#endif /* HEED_TENSOR_H */
