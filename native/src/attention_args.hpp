// attention_args.hpp - validated arguments of the attention kernels, shared by the entry points
// (attention_api.cpp), the CPU kernels and the CUDA launchers.
#pragma once

#include <cstdint>

#include "error.hpp"
#include "heed/tensor.h"
#include "tensor_view.hpp"

namespace heed {

// A tensor with its effective strides (zero strides resolved to row-major).
struct tview {
    const heed_tensor *t = nullptr;
    int64_t s[HEED_MAX_DIMS] = {0, 0, 0, 0};

    tview() = default;
    explicit tview(const heed_tensor *tensor) : t(tensor) {
        if (t)
            for (int d = 0; d < t->ndim; ++d) s[d] = stride_of(*t, d);
    }
    bool present() const { return t != nullptr; }
};

struct aggregate_args {
    tview q, q_pos, k, k_pos, out, out_per_head;  // out_per_head may be absent
    int64_t n_q, n_k, H, Hkv, d;
    float scale;
    bool causal;
};

// Flash and block-sparse attention (mask absent for flash).
struct attention_args {
    tview q, k, v, o, lse, mask;  // lse, mask may be absent
    int64_t B, H, Hkv, Nq, Nk, d;
    int64_t block;  // block-sparse only
    float scale;
    bool causal;
};

struct mask_estimate_args {
    tview q, k, mask;
    int64_t B, H, Hkv, Nq, Nk, d, block;
    float coverage, scale;
    bool causal;
};

namespace cpu {
heed_status attention_aggregate(const aggregate_args &a);
heed_status attention_forward(const attention_args &a);  // flash, or block-sparse when a.mask is present
heed_status block_mask_estimate(const mask_estimate_args &a);
}  // namespace cpu

}  // namespace heed
