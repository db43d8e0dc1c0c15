// status.cpp - versions, status names and the thread-local last error.
#include <string>

#include "error.hpp"
#include "heed/status.h"

#ifndef HEED_VERSION_STRING
#error "HEED_VERSION_STRING must come from the build"
#endif
#ifndef HEED_LLAMA_RELEASE
#define HEED_LLAMA_RELEASE "unknown"
#endif

namespace {
thread_local std::string last_error;
}

namespace heed {

heed_status set_error(heed_status status, const std::string &message) {
    last_error = message;
    return status;
}

heed_status ok() {
    last_error.clear();
    return HEED_OK;
}

}  // namespace heed

extern "C" {

const char *heed_version(void) { return HEED_VERSION_STRING; }

int32_t heed_abi_version(void) { return HEED_ABI_VERSION; }

const char *heed_llama_release(void) { return HEED_LLAMA_RELEASE; }

const char *heed_last_error(void) { return last_error.c_str(); }

void heed_clear_error(void) { last_error.clear(); }

const char *heed_status_name(heed_status status) {
    switch (status) {
        case HEED_OK: return "HEED_OK";
        case HEED_ERR_INVALID_ARGUMENT: return "HEED_ERR_INVALID_ARGUMENT";
        case HEED_ERR_OUT_OF_MEMORY: return "HEED_ERR_OUT_OF_MEMORY";
        case HEED_ERR_NO_CUDA: return "HEED_ERR_NO_CUDA";
        case HEED_ERR_CUDA: return "HEED_ERR_CUDA";
        case HEED_ERR_UNSUPPORTED: return "HEED_ERR_UNSUPPORTED";
        case HEED_ERR_NOT_FOUND: return "HEED_ERR_NOT_FOUND";
        case HEED_ERR_INTERNAL: return "HEED_ERR_INTERNAL";
    }
    return "HEED_ERR_UNKNOWN";
}

}  // extern "C"
