/*
 * heed.h - the C ABI of libheed.
 *
 * libheed holds Heed's fused attention kernels (CPU and CUDA), the attention capture that
 * reads post-RoPE Q and K out of llama.cpp, and the facts the .NET binding needs to call
 * llama.cpp safely. Every function returns a heed_status; on failure heed_last_error()
 * gives a message for the calling thread. No function aborts the process on bad input.
 *
 * This umbrella header is the one to include; the parts live under heed/.
 */
#ifndef HEED_H
#define HEED_H

#include "heed/status.h"
#include "heed/llama_abi.h"
#include "heed/llama_backends.h"
#include "heed/tensor.h"
#include "heed/linear_attention.h"
#include "heed/kv_quant.h"
#include "heed/attention.h"
#include "heed/capture.h"

#endif /* HEED_H */
