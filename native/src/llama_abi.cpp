// llama_abi.cpp - sizes and field offsets of the llama.cpp structs that bindings pass by value,
// taken from the real llama.h this library is compiled against.
#include <cstddef>
#include <cstring>

#include "error.hpp"
#include "heed/llama_abi.h"
#include "llama.h"

namespace {

struct field_layout {
    const char *type;
    const char *field;
    size_t offset;
    size_t size;
};

struct struct_layout {
    const char *type;
    size_t size;
};

#define HEED_FIELD(T, F) {#T, #F, offsetof(T, F), sizeof(((T *)nullptr)->F)}

const struct_layout structs[] = {
    {"llama_model_params", sizeof(llama_model_params)},
    {"llama_context_params", sizeof(llama_context_params)},
    {"llama_batch", sizeof(llama_batch)},
    {"llama_sampler_chain_params", sizeof(llama_sampler_chain_params)},
    {"llama_chat_message", sizeof(llama_chat_message)},
    {"llama_token_data", sizeof(llama_token_data)},
    {"llama_token_data_array", sizeof(llama_token_data_array)},
    {"llama_perf_context_data", sizeof(llama_perf_context_data)},
};

const field_layout fields[] = {
    HEED_FIELD(llama_model_params, devices),
    HEED_FIELD(llama_model_params, tensor_buft_overrides),
    HEED_FIELD(llama_model_params, n_gpu_layers),
    HEED_FIELD(llama_model_params, split_mode),
    HEED_FIELD(llama_model_params, load_mode),
    HEED_FIELD(llama_model_params, lazy_mode),
    HEED_FIELD(llama_model_params, main_gpu),
    HEED_FIELD(llama_model_params, tensor_split),
    HEED_FIELD(llama_model_params, progress_callback),
    HEED_FIELD(llama_model_params, progress_callback_user_data),
    HEED_FIELD(llama_model_params, kv_overrides),
    HEED_FIELD(llama_model_params, vocab_only),
    HEED_FIELD(llama_model_params, check_tensors),
    HEED_FIELD(llama_model_params, use_extra_bufts),
    HEED_FIELD(llama_model_params, no_host),
    HEED_FIELD(llama_model_params, no_alloc),
    HEED_FIELD(llama_model_params, load_mtp),

    HEED_FIELD(llama_context_params, n_ctx),
    HEED_FIELD(llama_context_params, n_batch),
    HEED_FIELD(llama_context_params, n_ubatch),
    HEED_FIELD(llama_context_params, n_seq_max),
    HEED_FIELD(llama_context_params, n_rs_seq),
    HEED_FIELD(llama_context_params, n_outputs_max),
    HEED_FIELD(llama_context_params, n_outputs_max_per_seq),
    HEED_FIELD(llama_context_params, n_threads),
    HEED_FIELD(llama_context_params, n_threads_batch),
    HEED_FIELD(llama_context_params, ctx_type),
    HEED_FIELD(llama_context_params, rope_scaling_type),
    HEED_FIELD(llama_context_params, pooling_type),
    HEED_FIELD(llama_context_params, attention_type),
    HEED_FIELD(llama_context_params, flash_attn_type),
    HEED_FIELD(llama_context_params, rope_freq_base),
    HEED_FIELD(llama_context_params, rope_freq_scale),
    HEED_FIELD(llama_context_params, yarn_ext_factor),
    HEED_FIELD(llama_context_params, yarn_attn_factor),
    HEED_FIELD(llama_context_params, yarn_beta_fast),
    HEED_FIELD(llama_context_params, yarn_beta_slow),
    HEED_FIELD(llama_context_params, yarn_orig_ctx),
    HEED_FIELD(llama_context_params, defrag_thold),
    HEED_FIELD(llama_context_params, cb_eval),
    HEED_FIELD(llama_context_params, cb_eval_user_data),
    HEED_FIELD(llama_context_params, type_k),
    HEED_FIELD(llama_context_params, type_v),
    HEED_FIELD(llama_context_params, abort_callback),
    HEED_FIELD(llama_context_params, abort_callback_data),
    HEED_FIELD(llama_context_params, embeddings),
    HEED_FIELD(llama_context_params, offload_kqv),
    HEED_FIELD(llama_context_params, no_perf),
    HEED_FIELD(llama_context_params, op_offload),
    HEED_FIELD(llama_context_params, swa_full),
    HEED_FIELD(llama_context_params, kv_unified),
    HEED_FIELD(llama_context_params, samplers),
    HEED_FIELD(llama_context_params, n_samplers),
    HEED_FIELD(llama_context_params, ctx_other),

    HEED_FIELD(llama_batch, n_tokens),
    HEED_FIELD(llama_batch, token),
    HEED_FIELD(llama_batch, embd),
    HEED_FIELD(llama_batch, pos),
    HEED_FIELD(llama_batch, n_seq_id),
    HEED_FIELD(llama_batch, seq_id),
    HEED_FIELD(llama_batch, logits),

    HEED_FIELD(llama_sampler_chain_params, no_perf),

    HEED_FIELD(llama_chat_message, role),
    HEED_FIELD(llama_chat_message, content),

    HEED_FIELD(llama_token_data, id),
    HEED_FIELD(llama_token_data, logit),
    HEED_FIELD(llama_token_data, p),

    HEED_FIELD(llama_token_data_array, data),
    HEED_FIELD(llama_token_data_array, size),
    HEED_FIELD(llama_token_data_array, selected),
    HEED_FIELD(llama_token_data_array, sorted),

    HEED_FIELD(llama_perf_context_data, t_start_ms),
    HEED_FIELD(llama_perf_context_data, t_load_ms),
    HEED_FIELD(llama_perf_context_data, t_p_eval_ms),
    HEED_FIELD(llama_perf_context_data, t_eval_ms),
    HEED_FIELD(llama_perf_context_data, n_p_eval),
    HEED_FIELD(llama_perf_context_data, n_eval),
    HEED_FIELD(llama_perf_context_data, n_reused),
};

#undef HEED_FIELD

const struct_layout *find_struct(const char *type) {
    for (const auto &s : structs) {
        if (std::strcmp(s.type, type) == 0) return &s;
    }
    return nullptr;
}

}  // namespace

extern "C" {

heed_status heed_llama_struct_size(const char *type_name, size_t *size) {
    if (type_name == nullptr || size == nullptr)
        return heed::fail(HEED_ERR_INVALID_ARGUMENT, "heed_llama_struct_size: type_name and size must not be null");
    const struct_layout *s = find_struct(type_name);
    if (s == nullptr) return heed::fail(HEED_ERR_NOT_FOUND, "unknown llama.cpp struct '%s'", type_name);
    *size = s->size;
    return heed::ok();
}

heed_status heed_llama_field_layout(const char *type_name, const char *field_name, size_t *offset, size_t *size) {
    if (type_name == nullptr || field_name == nullptr || offset == nullptr || size == nullptr)
        return heed::fail(HEED_ERR_INVALID_ARGUMENT, "heed_llama_field_layout: no argument may be null");
    if (find_struct(type_name) == nullptr)
        return heed::fail(HEED_ERR_NOT_FOUND, "unknown llama.cpp struct '%s'", type_name);
    for (const auto &f : fields) {
        if (std::strcmp(f.type, type_name) == 0 && std::strcmp(f.field, field_name) == 0) {
            *offset = f.offset;
            *size = f.size;
            return heed::ok();
        }
    }
    return heed::fail(HEED_ERR_NOT_FOUND, "llama.cpp struct '%s' has no field '%s'", type_name, field_name);
}

heed_status heed_llama_field_count(const char *type_name, int32_t *count) {
    if (type_name == nullptr || count == nullptr)
        return heed::fail(HEED_ERR_INVALID_ARGUMENT, "heed_llama_field_count: type_name and count must not be null");
    if (find_struct(type_name) == nullptr)
        return heed::fail(HEED_ERR_NOT_FOUND, "unknown llama.cpp struct '%s'", type_name);
    int32_t n = 0;
    for (const auto &f : fields) n += std::strcmp(f.type, type_name) == 0;
    *count = n;
    return heed::ok();
}

heed_status heed_llama_field_at(const char *type_name, int32_t index, const char **field_name, size_t *offset,
                                size_t *size) {
    if (type_name == nullptr || field_name == nullptr || offset == nullptr || size == nullptr)
        return heed::fail(HEED_ERR_INVALID_ARGUMENT, "heed_llama_field_at: no argument may be null");
    if (find_struct(type_name) == nullptr)
        return heed::fail(HEED_ERR_NOT_FOUND, "unknown llama.cpp struct '%s'", type_name);
    int32_t n = 0;
    for (const auto &f : fields) {
        if (std::strcmp(f.type, type_name) != 0) continue;
        if (n++ == index) {
            *field_name = f.field;
            *offset = f.offset;
            *size = f.size;
            return heed::ok();
        }
    }
    return heed::fail(HEED_ERR_NOT_FOUND, "llama.cpp struct '%s' has %d fields, no index %d", type_name, n, index);
}

}  // extern "C"
