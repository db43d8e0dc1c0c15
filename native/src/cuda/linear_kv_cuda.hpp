// linear_kv_cuda.hpp - CUDA entry points of linear attention, KV quantization and quantized
// decode attention. linear_kv_api.cpp validates the arguments and calls these only for
// tensors in device memory, in CUDA builds.
#pragma once

#include "cpu/linear_kv_cpu.hpp"

namespace heed::linear_kv {

heed_status linear_attention_cuda(const linear_args &a, int device);
heed_status kv_quantize_cuda(const quantize_args &a, int device);
heed_status kv_dequantize_cuda(const dequantize_args &a, int device);
heed_status quant_decode_cuda(const decode_args &a, int device);

}  // namespace heed::linear_kv
