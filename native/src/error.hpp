// error.hpp - how libheed reports failure: a status code plus a thread-local message.
#pragma once

#include <cstdio>
#include <string>

#include "heed/status.h"

namespace heed {

// Stores the message for heed_last_error() on this thread and returns the status, so a
// failing check reads `return fail(HEED_ERR_INVALID_ARGUMENT, "...", ...);`.
heed_status set_error(heed_status status, const std::string &message);

template <typename... Args>
heed_status fail(heed_status status, const char *format, Args... args) {
    char buffer[1024];
    std::snprintf(buffer, sizeof buffer, format, args...);
    return set_error(status, buffer);
}

inline heed_status fail(heed_status status, const char *message) {
    return set_error(status, message);
}

// Clears the thread's message and returns HEED_OK.
heed_status ok();

}  // namespace heed

// Turns a C++ exception escaping an entry point into a status; nothing may unwind into C.
#define HEED_GUARD_BEGIN try {
#define HEED_GUARD_END                                                              \
    }                                                                               \
    catch (const std::bad_alloc &) {                                                \
        return heed::fail(HEED_ERR_OUT_OF_MEMORY, "out of host memory");            \
    }                                                                               \
    catch (const std::exception &e) {                                               \
        return heed::fail(HEED_ERR_INTERNAL, "internal error: %s", e.what());       \
    }
