/* c_header_test.c - heed.h compiles as C and the library answers from a C program. */
#include <stdio.h>
#include <string.h>

#include "heed.h"

int main(void) {
    heed_memory_kind kind;
    int32_t device = 0;
    if (heed_abi_version() != HEED_ABI_VERSION) {
        fprintf(stderr, "ABI version mismatch: %d vs %d\n", heed_abi_version(), HEED_ABI_VERSION);
        return 1;
    }
    if (heed_memory_kind_of(&device, &kind, &device) != HEED_OK || kind != HEED_MEMORY_HOST) {
        fprintf(stderr, "a stack pointer should be host memory: %s\n", heed_last_error());
        return 1;
    }
    if (heed_memory_kind_of(&device, NULL, &device) != HEED_ERR_INVALID_ARGUMENT || strlen(heed_last_error()) == 0) {
        fprintf(stderr, "expected an INVALID_ARGUMENT with a message\n");
        return 1;
    }
    printf("heed %s (llama.cpp %s), CUDA build: %d, devices: %d\n", heed_version(), heed_llama_release(),
           heed_built_with_cuda(), heed_cuda_device_count());
    return 0;
}
