// parallel_for.hpp - a small fork-join loop for the CPU kernels (no pool: calls are coarse).
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <exception>
#include <thread>
#include <vector>

namespace heed::cpu {

// Process-wide CPU settings (heed_attention_cpu_config).
struct cpu_settings {
    std::atomic<int> reference{0};
    std::atomic<int> threads{0};
};
cpu_settings &settings();

inline int worker_count(int64_t work_items) {
    int n = settings().threads.load();
    if (n <= 0) n = (int)std::max(1u, std::thread::hardware_concurrency());
    return (int)std::max<int64_t>(1, std::min<int64_t>(n, work_items));
}

// Runs fn(begin, end) over [0, n) in dynamically claimed chunks of `grain` items. The calling
// thread works too. An exception in a worker is rethrown on the caller (HEED_GUARD turns it into
// a status).
template <typename Fn>
void parallel_for(int64_t n, int64_t grain, Fn fn) {
    if (n <= 0) return;
    grain = std::max<int64_t>(1, grain);
    int64_t chunks = (n + grain - 1) / grain;
    int workers = worker_count(chunks);
    if (workers == 1) {
        fn((int64_t)0, n);
        return;
    }
    std::atomic<int64_t> next{0};
    std::exception_ptr error;
    std::atomic<bool> failed{false};
    auto body = [&] {
        try {
            for (;;) {
                int64_t c = next.fetch_add(1);
                if (c >= chunks || failed.load()) break;
                fn(c * grain, std::min(n, (c + 1) * grain));
            }
        } catch (...) {
            if (!failed.exchange(true)) error = std::current_exception();
        }
    };
    std::vector<std::thread> threads;
    threads.reserve(workers - 1);
    for (int w = 1; w < workers; ++w) threads.emplace_back(body);
    body();
    for (auto &t : threads) t.join();
    if (error) std::rethrow_exception(error);
}

}  // namespace heed::cpu
