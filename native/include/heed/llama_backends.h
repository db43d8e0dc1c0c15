/* heed/llama_backends.h - loading the ggml backend modules of Heed's llama.cpp build.
 *
 * Heed's llama.cpp files carry a "heed-" prefix so that another llama.cpp build can live in the
 * same process; ggml_backend_load_all only looks for "libggml-<backend>-*.so", so Heed's modules
 * ("libheed-ggml-cpu.so", "libheed-ggml-cpu-haswell.so", "libheed-ggml-cuda.so", ...) are
 * loaded by path here, with ggml's rule: per backend, the variant whose ggml_backend_score is
 * highest, else the plain module; a module that cannot be opened (CUDA without a driver) is
 * skipped. Backends other than the CPU register first, as with ggml_backend_load_all. */
#ifndef HEED_LLAMA_BACKENDS_H
#define HEED_LLAMA_BACKENDS_H

#include "status.h"

HEED_EXTERN_C_BEGIN

/* Loads the backend modules found in `directory`; `loaded` receives how many backends registered. */
HEED_API heed_status heed_load_backend_modules(const char *directory, int32_t *loaded);

HEED_EXTERN_C_END

#endif /* HEED_LLAMA_BACKENDS_H */
