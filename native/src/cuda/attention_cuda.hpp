// attention_cuda.hpp - the CUDA launchers behind heed/attention.h. Arguments arrive validated;
// a launcher answers HEED_ERR_UNSUPPORTED for valid input its kernels do not handle.
#pragma once

#include "attention_args.hpp"

namespace heed::cuda {
heed_status attention_aggregate(const aggregate_args &a, int device);
heed_status attention_forward(const attention_args &a, int device);  // flash, or block-sparse with a.mask
heed_status block_mask_estimate(const mask_estimate_args &a, int device);

// The tensor-core aggregation (f16/bf16, d 64 or 128, 16-byte aligned rows); the device is set.
bool aggregate_fits_tensor_cores(const aggregate_args &a);
heed_status attention_aggregate_tensor_cores(const aggregate_args &a, int sm_count);
}  // namespace heed::cuda
