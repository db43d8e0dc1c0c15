/* heed/llama_abi.h - the layouts of llama.cpp structs, as compiled from the real llama.h.
 *
 * Bindings in other languages declare these structs themselves and pass some of them by
 * value. Before the first call they compare their layout with these answers, so that a
 * llama.cpp whose structs moved is a clear error instead of a corrupted call.
 *
 * Known structs: llama_model_params, llama_context_params, llama_batch,
 * llama_sampler_chain_params, llama_chat_message, llama_token_data, llama_token_data_array,
 * llama_perf_context_data. */
#ifndef HEED_LLAMA_ABI_H
#define HEED_LLAMA_ABI_H

#include "status.h"

HEED_EXTERN_C_BEGIN

/* sizeof(struct type_name). HEED_ERR_NOT_FOUND for a struct this table does not know. */
HEED_API heed_status heed_llama_struct_size(const char *type_name, size_t *size);

/* offsetof and sizeof of one field. HEED_ERR_NOT_FOUND for an unknown struct or field. */
HEED_API heed_status heed_llama_field_layout(const char *type_name, const char *field_name,
                                             size_t *offset, size_t *size);

/* The number of fields this table knows for a struct, so a binding can check it lists them all. */
HEED_API heed_status heed_llama_field_count(const char *type_name, int32_t *count);

/* The index-th field of a struct, in declaration order: its name (static storage), offset, size. */
HEED_API heed_status heed_llama_field_at(const char *type_name, int32_t index, const char **field_name,
                                         size_t *offset, size_t *size);

HEED_EXTERN_C_END

#endif /* HEED_LLAMA_ABI_H */
