// llama_abi_test.cpp - libheed's table of llama.cpp layouts agrees with llama.h as this test
// sees it, and knows every field (a field added to llama.h without the table fails here).
#include <gtest/gtest.h>

#include <cstddef>

#include "heed.h"
#include "llama.h"

namespace {

void expect_field(const char *type, const char *field, size_t offset, size_t size) {
    size_t got_offset = 0, got_size = 0;
    ASSERT_EQ(heed_llama_field_layout(type, field, &got_offset, &got_size), HEED_OK) << type << "." << field;
    EXPECT_EQ(got_offset, offset) << type << "." << field;
    EXPECT_EQ(got_size, size) << type << "." << field;
}

// The table's fields, in order, tile the struct: each starts at or after the end of the one
// before with less than 8 bytes of padding, and the last ends within 8 bytes of the struct's
// end. A field added to llama.h but missing from the table leaves a gap and fails here.
void expect_fields_cover(const char *type, size_t struct_size, int32_t expected_count) {
    size_t size = 0;
    ASSERT_EQ(heed_llama_struct_size(type, &size), HEED_OK);
    EXPECT_EQ(size, struct_size) << type;
    int32_t count = 0;
    ASSERT_EQ(heed_llama_field_count(type, &count), HEED_OK);
    EXPECT_EQ(count, expected_count) << type;
    size_t end = 0;
    for (int32_t i = 0; i < count; ++i) {
        const char *name = nullptr;
        size_t offset = 0, field_size = 0;
        ASSERT_EQ(heed_llama_field_at(type, i, &name, &offset, &field_size), HEED_OK);
        EXPECT_GE(offset, end) << type << "." << name << " overlaps the field before it";
        EXPECT_LT(offset - end, 8u) << type << "." << name << ": a gap before it hides a field the table lacks";
        end = offset + field_size;
    }
    EXPECT_LE(end, size) << type;
    EXPECT_LT(size - end, 8u) << type << ": a gap at the end hides a field the table lacks";
    const char *name = nullptr;
    size_t offset = 0, field_size = 0;
    EXPECT_EQ(heed_llama_field_at(type, count, &name, &offset, &field_size), HEED_ERR_NOT_FOUND);
}

}  // namespace

#define EXPECT_FIELD(T, F) expect_field(#T, #F, offsetof(T, F), sizeof(((T *)nullptr)->F))

TEST(LlamaAbi, BatchLayout) {
    expect_fields_cover("llama_batch", sizeof(llama_batch), 7);
    EXPECT_FIELD(llama_batch, n_tokens);
    EXPECT_FIELD(llama_batch, token);
    EXPECT_FIELD(llama_batch, logits);
}

TEST(LlamaAbi, ContextParamsLayout) {
    expect_fields_cover("llama_context_params", sizeof(llama_context_params), 37);
    EXPECT_FIELD(llama_context_params, n_ctx);
    EXPECT_FIELD(llama_context_params, cb_eval);
    EXPECT_FIELD(llama_context_params, type_k);
    EXPECT_FIELD(llama_context_params, embeddings);
    EXPECT_FIELD(llama_context_params, ctx_other);
}

TEST(LlamaAbi, ModelParamsLayout) {
    expect_fields_cover("llama_model_params", sizeof(llama_model_params), 17);
    EXPECT_FIELD(llama_model_params, n_gpu_layers);
    EXPECT_FIELD(llama_model_params, progress_callback);
    EXPECT_FIELD(llama_model_params, load_mtp);
}

TEST(LlamaAbi, SmallStructs) {
    expect_fields_cover("llama_sampler_chain_params", sizeof(llama_sampler_chain_params), 1);
    expect_fields_cover("llama_chat_message", sizeof(llama_chat_message), 2);
    expect_fields_cover("llama_token_data", sizeof(llama_token_data), 3);
    expect_fields_cover("llama_token_data_array", sizeof(llama_token_data_array), 4);
    expect_fields_cover("llama_perf_context_data", sizeof(llama_perf_context_data), 7);
    EXPECT_FIELD(llama_token_data_array, sorted);
    EXPECT_FIELD(llama_perf_context_data, n_reused);
}

TEST(LlamaAbi, NullArgumentsAreErrors) {
    size_t offset = 0, size = 0;
    int32_t count = 0;
    EXPECT_EQ(heed_llama_struct_size(nullptr, &size), HEED_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(heed_llama_struct_size("llama_batch", nullptr), HEED_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(heed_llama_field_layout("llama_batch", nullptr, &offset, &size), HEED_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(heed_llama_field_count(nullptr, &count), HEED_ERR_INVALID_ARGUMENT);
}

TEST(LlamaAbi, UnknownNamesAreNotFound) {
    size_t offset = 0, size = 0;
    EXPECT_EQ(heed_llama_field_layout("llama_batch", "nope", &offset, &size), HEED_ERR_NOT_FOUND);
    EXPECT_EQ(heed_llama_field_layout("nope", "n_tokens", &offset, &size), HEED_ERR_NOT_FOUND);
}
