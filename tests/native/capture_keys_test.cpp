// capture_keys_test.cpp - key rows out of a capture session and back in (block ICR keeps them per document).
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "heed.h"

namespace {

heed_capture *make_session(int32_t dtype) {
    int32_t layers[] = {0, 3};
    heed_capture_options options{layers, 2, dtype, 0};
    heed_capture *session = nullptr;
    EXPECT_EQ(heed_capture_create(&options, &session), HEED_OK);
    return session;
}

}  // namespace

TEST(CaptureKeys, PutRowsComeBackAsTheyWent) {
    heed_capture *session = make_session(HEED_F32);
    const int32_t kv_heads = 2, head_dim = 4, n = 3;
    std::vector<float> rows(n * kv_heads * head_dim);
    for (size_t i = 0; i < rows.size(); ++i) rows[i] = 0.5f * static_cast<float>(i) - 3.0f;
    int32_t positions[] = {7, 8, 12};
    ASSERT_EQ(heed_capture_put_keys(session, 3, rows.data(), positions, n, HEED_F32, kv_heads, head_dim), HEED_OK);

    int32_t count = -1;
    ASSERT_EQ(heed_capture_get_keys(session, 3, 0, -1, nullptr, nullptr, 0, &count), HEED_OK);
    EXPECT_EQ(count, 3);
    ASSERT_EQ(heed_capture_get_keys(session, 0, 0, -1, nullptr, nullptr, 0, &count), HEED_OK);
    EXPECT_EQ(count, 0);  // the other layer got nothing

    // A position range picks the rows inside it.
    std::vector<float> out(2 * kv_heads * head_dim);
    int32_t out_positions[2];
    ASSERT_EQ(heed_capture_get_keys(session, 3, 8, 13, out.data(), out_positions, 2, &count), HEED_OK);
    ASSERT_EQ(count, 2);
    EXPECT_EQ(out_positions[0], 8);
    EXPECT_EQ(out_positions[1], 12);
    for (size_t i = 0; i < out.size(); ++i) EXPECT_EQ(out[i], rows[kv_heads * head_dim + i]);

    int32_t n_queries, n_keys, n_head, n_head_kv, dim;
    size_t bytes;
    ASSERT_EQ(heed_capture_stats(session, 3, &n_queries, &n_keys, &n_head, &n_head_kv, &dim, &bytes), HEED_OK);
    EXPECT_EQ(n_keys, 3);
    EXPECT_EQ(n_head_kv, kv_heads);
    EXPECT_EQ(dim, head_dim);
    heed_capture_free(session);
}

TEST(CaptureKeys, BadRowsAreErrorsNotCrashes) {
    heed_capture *session = make_session(HEED_F16);
    std::vector<uint16_t> rows(2 * 2 * 4, 0x3c00);
    int32_t positions[] = {5, 6}, descending[] = {6, 5};
    int32_t count = 0;
    EXPECT_EQ(heed_capture_put_keys(session, 0, rows.data(), positions, 2, HEED_F32, 2, 4), HEED_ERR_INVALID_ARGUMENT);  // dtype
    EXPECT_EQ(heed_capture_put_keys(session, 0, rows.data(), descending, 2, HEED_F16, 2, 4), HEED_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(heed_capture_put_keys(session, 1, rows.data(), positions, 2, HEED_F16, 2, 4), HEED_ERR_NOT_FOUND);  // layer 1 not captured
    EXPECT_EQ(heed_capture_put_keys(session, 0, nullptr, positions, 2, HEED_F16, 2, 4), HEED_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(heed_capture_put_keys(session, 0, rows.data(), positions, 2, HEED_F16, 0, 4), HEED_ERR_INVALID_ARGUMENT);
    ASSERT_EQ(heed_capture_put_keys(session, 0, rows.data(), positions, 2, HEED_F16, 2, 4), HEED_OK);
    EXPECT_EQ(heed_capture_put_keys(session, 0, rows.data(), positions, 2, HEED_F16, 2, 4), HEED_ERR_INVALID_ARGUMENT);  // not past the last row
    EXPECT_EQ(heed_capture_put_keys(session, 3, rows.data(), positions, 2, HEED_F16, 4, 2), HEED_ERR_INVALID_ARGUMENT);  // other geometry
    EXPECT_EQ(heed_capture_get_keys(session, 0, 0, -1, nullptr, nullptr, 0, nullptr), HEED_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(heed_capture_get_keys(session, 0, 4, 2, nullptr, nullptr, 0, &count), HEED_ERR_INVALID_ARGUMENT);
    std::vector<uint16_t> small(4);
    int32_t one[1];
    EXPECT_EQ(heed_capture_get_keys(session, 0, 0, -1, small.data(), one, 1, &count), HEED_ERR_INVALID_ARGUMENT);  // room for 1 of 2
    EXPECT_EQ(heed_capture_get_keys(nullptr, 0, 0, -1, nullptr, nullptr, 0, &count), HEED_ERR_INVALID_ARGUMENT);
    heed_capture_free(session);
}
