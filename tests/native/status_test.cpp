// status_test.cpp - versions, status names and the thread-local last error.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <thread>

#include "heed.h"

TEST(Status, VersionsAreReported) {
    EXPECT_STREQ(heed_version(), "0.1.0");
    EXPECT_EQ(heed_abi_version(), HEED_ABI_VERSION);
    EXPECT_STREQ(heed_llama_release(), "v0.5.0");
}

TEST(Status, EveryCodeHasAName) {
    for (int s = HEED_OK; s <= HEED_ERR_INTERNAL; ++s)
        EXPECT_EQ(std::strncmp(heed_status_name(static_cast<heed_status>(s)), "HEED_", 5), 0);
    EXPECT_STREQ(heed_status_name(static_cast<heed_status>(999)), "HEED_ERR_UNKNOWN");
}

TEST(Status, LastErrorIsPerThreadAndClearedBySuccess) {
    heed_memory_kind kind;
    int32_t device = 0;
    ASSERT_EQ(heed_memory_kind_of(&device, nullptr, &device), HEED_ERR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(heed_last_error()).find("heed_memory_kind_of"), std::string::npos);

    std::string other_thread_error = "unset";
    std::thread([&] { other_thread_error = heed_last_error(); }).join();
    EXPECT_EQ(other_thread_error, "");

    ASSERT_EQ(heed_memory_kind_of(&device, &kind, &device), HEED_OK);
    EXPECT_STREQ(heed_last_error(), "");
}

TEST(Status, NullArgumentsAreErrorsNotCrashes) {
    heed_memory_kind kind;
    int32_t device = 0;
    EXPECT_EQ(heed_memory_kind_of(nullptr, nullptr, &device), HEED_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(heed_memory_kind_of(&device, &kind, &device), HEED_OK);
    EXPECT_EQ(kind, HEED_MEMORY_HOST);
}

#ifndef HEED_WITH_CUDA
// CPU-only builds only (CUDA builds cover these helpers in the Cuda* suites), so nothing is skipped.
TEST(Status, CudaHelpersAnswerWithoutCuda) {
    ASSERT_EQ(heed_built_with_cuda(), 0);
    void *ptr = reinterpret_cast<void *>(0x1);
    EXPECT_EQ(heed_cuda_device_count(), 0);
    EXPECT_EQ(heed_cuda_malloc(0, 16, &ptr), HEED_ERR_NO_CUDA);
    EXPECT_EQ(ptr, nullptr);
    EXPECT_EQ(heed_cuda_synchronize(0), HEED_ERR_NO_CUDA);
    EXPECT_NE(std::string(heed_last_error()).find("without CUDA"), std::string::npos);
}
#endif
