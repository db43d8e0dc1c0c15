// kv_quant.cu - KV cache quantization and dequantization on CUDA (layout: heed/kv_quant.h).
//
// The arithmetic is the CPU's (cpu/kv_quant.cpp) step for step: zero = lo rounded down to
// fp16, scale = (hi - zero)/qmax (in double, then rounded up to f32 and to fp16), codes from an
// IEEE f32 division rounded half to even, x^ = fmaf(q, scale, zero). So both paths write the
// same bytes.
//   slots:  one block per batch item numbers the salient tokens in order (warp ballots).
//   K:      one block per (token group, kv head, batch item); a thread owns one code byte
//           (8/bits channels) and scans the group's tokens twice (statistics, then codes).
//   V:      one warp per token; per channel group a warp-wide min/max, then code bytes.
#include <cmath>
#include <vector>

#include "cuda/linear_kv_cuda.hpp"

namespace heed::linear_kv {
namespace {

struct group_params {
    float scale, zero;
    __half scale_h, zero_h;
};

__device__ __forceinline__ group_params make_group(float lo, float hi, int qmax) {
    group_params p;
    p.scale = 0.0f, p.zero = 0.0f;
    p.scale_h = __float2half_rn(0.0f), p.zero_h = __float2half_rn(0.0f);
    if (!(lo <= hi)) return p;
    p.zero_h = __float2half_rd(lo);
    p.zero = __half2float(p.zero_h);
    const double r = ((double)hi - (double)p.zero) / qmax;
    float rf = (float)r;
    if ((double)rf < r) rf = nextafterf(rf, INFINITY);
    p.scale_h = __float2half_ru(rf);
    p.scale = __half2float(p.scale_h);
    return p;
}

__device__ __forceinline__ unsigned quantize_one(float x, const group_params &p, int qmax) {
    if (p.scale == 0.0f) return 0;
    float v = rintf(__fdiv_rn(x - p.zero, p.scale));
    v = fminf(fmaxf(v, 0.0f), (float)qmax);
    return (unsigned)v;
}

struct quant_params {
    dview k, v, mask;
    int has_mask, mask_per_batch;
    uint8_t *kcodes, *vcodes;
    __half *kscale, *kzero, *vscale, *vzero, *sk, *sv;
    int32_t *slot, *count;
    int64_t Hkv, N, S, KG, VG;
    int d, dv, bits, group;
};

__global__ void slot_kernel(quant_params p) {
    __shared__ int warp_total[32];
    __shared__ int base;
    const int b = blockIdx.x, tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    if (tid == 0) base = 0;
    __syncthreads();
    for (int64_t n0 = 0; n0 < p.N; n0 += blockDim.x) {
        const int64_t n = n0 + tid;
        bool flag = false;
        if (n < p.N && p.has_mask) {
            const int64_t off = p.mask_per_batch ? b * p.mask.s[0] + n * p.mask.s[1] : n * p.mask.s[0];
            flag = static_cast<const uint8_t *>(p.mask.data)[off] != 0;
        }
        const unsigned ballot = __ballot_sync(0xffffffffu, flag);
        const int before = __popc(ballot & ((1u << lane) - 1u));
        if (lane == 0) warp_total[warp] = __popc(ballot);
        __syncthreads();
        if (tid == 0) {  // exclusive prefix over the warps
            int run = 0;
            for (int w = 0; w < (int)(blockDim.x / 32); ++w) {
                const int t = warp_total[w];
                warp_total[w] = run;
                run += t;
            }
            warp_total[31] = run;  // blockDim.x <= 992 keeps slot 31 free for the total
        }
        __syncthreads();
        if (n < p.N) p.slot[b * p.N + n] = flag ? base + warp_total[warp] + before : -1;
        __syncthreads();
        if (tid == 0) base += warp_total[31];
        __syncthreads();
    }
    if (tid == 0) p.count[b] = base;
}

template <int BITS>
__global__ void quantize_k_kernel(quant_params p) {
    constexpr int CPB = 8 / BITS;  // codes per byte
    constexpr int QMAX = (1 << BITS) - 1;
    const int64_t j = blockIdx.x, h = blockIdx.y, b = blockIdx.z, pair = b * p.Hkv + h;
    const int64_t n0 = j * p.group, n1 = min(p.N, n0 + p.group);
    const int row_bytes = p.d / CPB;
    const int32_t *slot = p.slot + b * p.N;
    const int64_t kb = b * p.k.s[0] + h * p.k.s[1];
    for (int byte = threadIdx.x; byte < row_bytes; byte += blockDim.x) {
        float lo[CPB], hi[CPB];
#pragma unroll
        for (int c = 0; c < CPB; ++c) lo[c] = INFINITY, hi[c] = -INFINITY;
        for (int64_t n = n0; n < n1; ++n) {
            if (slot[n] >= 0) continue;
#pragma unroll
            for (int c = 0; c < CPB; ++c) {
                const float x = dload(p.k, kb + n * p.k.s[2] + (byte * CPB + c) * p.k.s[3]);
                lo[c] = fminf(lo[c], x), hi[c] = fmaxf(hi[c], x);
            }
        }
        group_params gp[CPB];
#pragma unroll
        for (int c = 0; c < CPB; ++c) {
            gp[c] = make_group(lo[c], hi[c], QMAX);
            const int64_t si = (pair * p.KG + j) * p.d + byte * CPB + c;
            p.kscale[si] = gp[c].scale_h;
            p.kzero[si] = gp[c].zero_h;
        }
        for (int64_t n = n0; n < n1; ++n) {
            const int32_t s = slot[n];
            unsigned packed = 0;
#pragma unroll
            for (int c = 0; c < CPB; ++c) {
                const float x = dload(p.k, kb + n * p.k.s[2] + (byte * CPB + c) * p.k.s[3]);
                if (s >= 0) p.sk[(pair * p.S + s) * p.d + byte * CPB + c] = __float2half_rn(x);
                else packed |= quantize_one(x, gp[c], QMAX) << (BITS * c);
            }
            p.kcodes[(pair * p.N + n) * row_bytes + byte] = (uint8_t)packed;
        }
    }
}

template <int BITS>
__global__ void quantize_v_kernel(quant_params p, int64_t rows) {
    constexpr int CPB = 8 / BITS;
    constexpr int QMAX = (1 << BITS) - 1;
    const int lane = threadIdx.x & 31;
    const int64_t row = blockIdx.x * (int64_t)(blockDim.x / 32) + threadIdx.x / 32;  // (b, h, n)
    if (row >= rows) return;
    const int64_t n = row % p.N, h = (row / p.N) % p.Hkv, b = row / (p.N * p.Hkv), pair = b * p.Hkv + h;
    const int32_t s = p.slot[b * p.N + n];
    const int64_t vb = b * p.v.s[0] + h * p.v.s[1] + n * p.v.s[2];
    const int row_bytes = p.dv / CPB;
    for (int64_t gi = 0; gi < p.VG; ++gi) {
        const int c0 = (int)gi * p.group, c1 = min(p.dv, c0 + p.group);
        float lo = INFINITY, hi = -INFINITY;
        if (s < 0)
            for (int c = c0 + lane; c < c1; c += 32) {
                const float x = dload(p.v, vb + c * p.v.s[3]);
                lo = fminf(lo, x), hi = fmaxf(hi, x);
            }
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) {
            lo = fminf(lo, __shfl_xor_sync(0xffffffffu, lo, o));
            hi = fmaxf(hi, __shfl_xor_sync(0xffffffffu, hi, o));
        }
        const group_params gp = make_group(lo, hi, QMAX);
        if (lane == 0) {
            p.vscale[row * p.VG + gi] = gp.scale_h;
            p.vzero[row * p.VG + gi] = gp.zero_h;
        }
        for (int byte = c0 / CPB + lane; byte < c1 / CPB; byte += 32) {
            unsigned packed = 0;
#pragma unroll
            for (int c = 0; c < CPB; ++c) {
                const float x = dload(p.v, vb + (byte * CPB + c) * p.v.s[3]);
                if (s >= 0) p.sv[(pair * p.S + s) * p.dv + byte * CPB + c] = __float2half_rn(x);
                else packed |= quantize_one(x, gp, QMAX) << (BITS * c);
            }
            p.vcodes[row * row_bytes + byte] = (uint8_t)packed;
        }
    }
}

struct dequant_params {
    const uint8_t *kcodes, *vcodes;
    const __half *kscale, *kzero, *vscale, *vzero, *sk, *sv;
    const int32_t *slot;
    dview kout, vout;
    int has_k, has_v;
    int64_t Hkv, N, S, KG, VG;
    int d, dv, bits, group;
};

__device__ __forceinline__ unsigned code_at(const uint8_t *row, int c, int bits) {
    if (bits == 8) return row[c];
    if (bits == 4) return (row[c >> 1] >> (4 * (c & 1))) & 0xFu;
    return (row[c >> 2] >> (2 * (c & 3))) & 0x3u;
}

// One thread per element; K elements first, then V.
__global__ void dequantize_kernel(dequant_params p, int64_t k_elems, int64_t v_elems) {
    const int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
    if (i < k_elems) {
        const int c = (int)(i % p.d);
        const int64_t row = i / p.d, n = row % p.N, h = (row / p.N) % p.Hkv, b = row / (p.N * p.Hkv), pair = b * p.Hkv + h;
        const int32_t raw = p.slot[b * p.N + n], s = raw < p.S ? raw : -1;
        float x;
        if (s >= 0) {
            x = __half2float(p.sk[(pair * p.S + s) * p.d + c]);
        } else {
            const int64_t si = (pair * p.KG + n / p.group) * p.d + c;
            x = fmaf((float)code_at(p.kcodes + row * (p.d * p.bits / 8), c, p.bits), __half2float(p.kscale[si]),
                     __half2float(p.kzero[si]));
        }
        dstore(p.kout, b * p.kout.s[0] + h * p.kout.s[1] + n * p.kout.s[2] + c * p.kout.s[3], x);
    } else if (i < k_elems + v_elems) {
        const int64_t j = i - k_elems;
        const int c = (int)(j % p.dv);
        const int64_t row = j / p.dv, n = row % p.N, h = (row / p.N) % p.Hkv, b = row / (p.N * p.Hkv), pair = b * p.Hkv + h;
        const int32_t raw = p.slot[b * p.N + n], s = raw < p.S ? raw : -1;
        float x;
        if (s >= 0) {
            x = __half2float(p.sv[(pair * p.S + s) * p.dv + c]);
        } else {
            const int64_t si = row * p.VG + c / p.group;
            x = fmaf((float)code_at(p.vcodes + row * (p.dv * p.bits / 8), c, p.bits), __half2float(p.vscale[si]),
                     __half2float(p.vzero[si]));
        }
        dstore(p.vout, b * p.vout.s[0] + h * p.vout.s[1] + n * p.vout.s[2] + c * p.vout.s[3], x);
    }
}

template <int BITS>
heed_status launch_quantize(const quant_params &p, const quant_dims &D) {
    quantize_k_kernel<BITS><<<dim3((unsigned)D.k_groups(), (unsigned)D.Hkv, (unsigned)D.B), 128>>>(p);
    HEED_CUDA_CHECK_LAUNCH("quantize_k_kernel");
    const int64_t rows = D.B * D.Hkv * D.N;
    quantize_v_kernel<BITS><<<(unsigned)((rows + 3) / 4), 128>>>(p, rows);
    HEED_CUDA_CHECK_LAUNCH("quantize_v_kernel");
    return HEED_OK;
}

}  // namespace

heed_status kv_quantize_cuda(const quantize_args &a, int device) {
    device_scope scope(device);
    HEED_CUDA_CHECK(scope.err);
    const quant_dims &D = a.dims;
    const heed_quant_kv &c = *a.cache;
    if (D.k_groups() > 0x7fffffff || D.Hkv > 65535 || D.B > 65535 || D.B * D.Hkv * D.N / 4 > 0x7fffffff)
        return fail(HEED_ERR_UNSUPPORTED, "k: too many heads, batch items or tokens for the CUDA quantizer");
    quant_params p{};
    p.k = make_view(a.k), p.v = make_view(a.v), p.mask = make_view(a.mask);
    p.has_mask = a.mask != nullptr, p.mask_per_batch = a.mask != nullptr && a.mask->ndim == 2;
    p.kcodes = static_cast<uint8_t *>(c.k_codes.data), p.vcodes = static_cast<uint8_t *>(c.v_codes.data);
    p.kscale = static_cast<__half *>(c.k_scale.data), p.kzero = static_cast<__half *>(c.k_zero.data);
    p.vscale = static_cast<__half *>(c.v_scale.data), p.vzero = static_cast<__half *>(c.v_zero.data);
    p.sk = static_cast<__half *>(c.salient_k.data), p.sv = static_cast<__half *>(c.salient_v.data);
    p.slot = static_cast<int32_t *>(c.salient_slot.data), p.count = static_cast<int32_t *>(c.salient_count.data);
    p.Hkv = D.Hkv, p.N = D.N, p.S = D.S, p.KG = D.k_groups(), p.VG = D.v_groups();
    p.d = (int)D.d, p.dv = (int)D.dv, p.bits = D.bits, p.group = D.group;

    slot_kernel<<<(unsigned)D.B, 512>>>(p);
    HEED_CUDA_CHECK_LAUNCH("slot_kernel");
    // The capacity check needs the counts on the host: this call synchronizes.
    std::vector<int32_t> counts(D.B);
    HEED_CUDA_CHECK(cudaMemcpy(counts.data(), p.count, D.B * sizeof(int32_t), cudaMemcpyDeviceToHost));
    for (int64_t b = 0; b < D.B; ++b)
        if (counts[b] > D.S)
            return fail(HEED_ERR_INVALID_ARGUMENT,
                        "salient_mask: batch item %lld has %d salient tokens, more than the cache's salient capacity %lld",
                        (long long)b, counts[b], (long long)D.S);
    if (D.S > 0) {  // unused salient rows are zero
        HEED_CUDA_CHECK(cudaMemsetAsync(p.sk, 0, (size_t)(D.B * D.Hkv * D.S * D.d) * 2, 0));
        HEED_CUDA_CHECK(cudaMemsetAsync(p.sv, 0, (size_t)(D.B * D.Hkv * D.S * D.dv) * 2, 0));
    }
    heed_status s = D.bits == 8 ? launch_quantize<8>(p, D) : D.bits == 4 ? launch_quantize<4>(p, D) : launch_quantize<2>(p, D);
    if (s != HEED_OK) return s;
    return ok();
}

heed_status kv_dequantize_cuda(const dequantize_args &a, int device) {
    device_scope scope(device);
    HEED_CUDA_CHECK(scope.err);
    const quant_dims &D = a.dims;
    const heed_quant_kv &c = *a.cache;
    dequant_params p{};
    p.kcodes = static_cast<const uint8_t *>(c.k_codes.data), p.vcodes = static_cast<const uint8_t *>(c.v_codes.data);
    p.kscale = static_cast<const __half *>(c.k_scale.data), p.kzero = static_cast<const __half *>(c.k_zero.data);
    p.vscale = static_cast<const __half *>(c.v_scale.data), p.vzero = static_cast<const __half *>(c.v_zero.data);
    p.sk = static_cast<const __half *>(c.salient_k.data), p.sv = static_cast<const __half *>(c.salient_v.data);
    p.slot = static_cast<const int32_t *>(c.salient_slot.data);
    p.kout = make_view(a.k_out), p.vout = make_view(a.v_out);
    p.has_k = a.k_out != nullptr, p.has_v = a.v_out != nullptr;
    p.Hkv = D.Hkv, p.N = D.N, p.S = D.S, p.KG = D.k_groups(), p.VG = D.v_groups();
    p.d = (int)D.d, p.dv = (int)D.dv, p.bits = D.bits, p.group = D.group;
    const int64_t ke = a.k_out ? D.B * D.Hkv * D.N * D.d : 0, ve = a.v_out ? D.B * D.Hkv * D.N * D.dv : 0;
    const int64_t blocks = (ke + ve + 255) / 256;
    if (blocks == 0) return ok();
    if (blocks > 0x7fffffff) return fail(HEED_ERR_UNSUPPORTED, "cache: too large for the CUDA dequantizer");
    dequantize_kernel<<<(unsigned)blocks, 256>>>(p, ke, ve);
    HEED_CUDA_CHECK_LAUNCH("dequantize_kernel");
    return ok();
}

}  // namespace heed::linear_kv
