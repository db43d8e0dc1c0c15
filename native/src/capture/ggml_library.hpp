// ggml_library.hpp - the ggml whose tensors a capture session reads.
//
// The eval callback runs inside whichever llama.cpp build decodes: Heed's own, or another one
// loaded in the same process (LLamaSharp's). Tensors must be read with the functions of the
// ggml that made them, so a session calls ggml through this table: Heed's own functions by
// default, or those found by dlsym in another ggml-base library after a check that its
// ggml_tensor has the layout libheed was compiled against.
#pragma once

#include "ggml.h"
#include "heed/status.h"

namespace heed {

struct ggml_library {
    bool (*is_contiguous)(const ggml_tensor *tensor);
    void (*tensor_get)(const ggml_tensor *tensor, void *data, size_t offset, size_t size);
    void *handle;  // dlopen handle of another ggml-base; null for Heed's own
};

// Heed's own ggml (the one libheed is linked with).
ggml_library own_ggml_library();

// The ggml-base already loaded in this process under `name` (a file name or soname, e.g.
// "libggml-base.so"; never loaded by this call). Fails with HEED_ERR_UNSUPPORTED when its
// ggml_tensor layout or op numbering differs from the one libheed was built for.
heed_status open_ggml_library(const char *name, ggml_library *library);

void close_ggml_library(ggml_library *library);

}  // namespace heed
