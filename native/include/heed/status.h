/* heed/status.h - versions, status codes and the thread-local last error. */
#ifndef HEED_STATUS_H
#define HEED_STATUS_H

#include <stddef.h>
#include <stdint.h>

#include "export.h"

HEED_EXTERN_C_BEGIN

/* Bumped whenever a struct layout or a function signature in heed.h changes. */
#define HEED_ABI_VERSION 1

typedef enum heed_status {
    HEED_OK = 0,
    HEED_ERR_INVALID_ARGUMENT = 1, /* a null pointer, bad shape, stride, dtype or size */
    HEED_ERR_OUT_OF_MEMORY = 2,    /* host or device allocation failed */
    HEED_ERR_NO_CUDA = 3,          /* device memory given to a build or machine without CUDA */
    HEED_ERR_CUDA = 4,             /* a CUDA call failed; the message names it */
    HEED_ERR_UNSUPPORTED = 5,      /* valid input this build does not handle (e.g. a head size) */
    HEED_ERR_NOT_FOUND = 6,        /* a named thing (struct, field, layer) does not exist */
    HEED_ERR_INTERNAL = 7          /* a bug in libheed; please report the message */
} heed_status;

/* libheed's version, e.g. "0.1.0". */
HEED_API const char *heed_version(void);

/* HEED_ABI_VERSION as compiled into the library; callers compare it with their header's. */
HEED_API int32_t heed_abi_version(void);

/* The llama.cpp release libheed was compiled against, e.g. "v0.5.0". */
HEED_API const char *heed_llama_release(void);

/* The message of the last failed call on this thread, or "" if there was none. */
HEED_API const char *heed_last_error(void);

/* Forgets the last error of this thread. */
HEED_API void heed_clear_error(void);

/* A stable name for a status code, e.g. "HEED_ERR_INVALID_ARGUMENT". */
HEED_API const char *heed_status_name(heed_status status);

/* 1 if this build of libheed was compiled with CUDA kernels, else 0. */
HEED_API int32_t heed_built_with_cuda(void);

/* Number of CUDA devices usable now (0 in a CPU-only build or on a machine without a GPU). */
HEED_API int32_t heed_cuda_device_count(void);

HEED_EXTERN_C_END

#endif /* HEED_STATUS_H */
