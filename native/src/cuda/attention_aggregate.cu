// attention_aggregate.cu - per-key attention mass on CUDA, in fp32 CUDA-core arithmetic (any
// f32/f16/bf16 input, any strides, d up to 256). Built for the retrieval shape: few query rows,
// many keys.
//
// Pass 1 (row statistics): a CTA takes 16 query rows of one head and a split of the keys; each
// thread keeps an online (max, sum) over its keys, merged across the row's 16 lanes; a second
// small kernel merges the splits into (max, 1/sum) per row. Pass 2 (mass): a CTA takes 32 keys
// of one head and walks every query row, adding exp(s - max) / sum; per-head values are stored,
// totals added atomically into `out` (zeroed first). Memory besides the outputs: O(splits H n_q).
#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "cuda/attention_cuda.hpp"
#include "cuda/cuda_check.hpp"
#include "cuda/tensor_core.cuh"

namespace heed::cuda {
namespace {

constexpr int kRows = 16;
constexpr int kKeys = 32;
constexpr int kThreads = 256;  // 16 rows x 16 lanes, each lane two keys
constexpr int kMaxD = 256;

struct AggParams {
    const void *q, *k;
    const int32_t *qpos, *kpos;
    int64_t qs[3], ks[3], qps, kps;
    float *out;
    int64_t outs;
    float *per_head;  // may be null
    int64_t phs[2];
    float2 *stats;    // [splits][H][n_q]: (max, sum), then split 0 holds (max, 1/sum)
    int n_q, n_k, H, Hkv, d, splits, keys_per_split;
    float scale;
    bool causal;
};

__device__ __forceinline__ float2 merge(float2 a, float2 b) {
    const float m = fmaxf(a.x, b.x);
    if (m == -INFINITY) return make_float2(-INFINITY, 0.0f);
    return make_float2(m, a.y * __expf(a.x - m) + b.y * __expf(b.x - m));
}

template <typename T>
__device__ __forceinline__ void load_rows(float *dst, const T *src, int64_t row_stride, int64_t col_stride, int row0,
                                          int rows, int n, int d) {
    for (int idx = threadIdx.x; idx < rows * d; idx += kThreads) {
        const int r = idx / d, c = idx % d;
        dst[r * (d + 1) + c] = row0 + r < n ? to_float<T>(src[(int64_t)(row0 + r) * row_stride + c * col_stride]) : 0.0f;
    }
}

__device__ __forceinline__ float dot_smem(const float *a, const float *b, int d) {
    float s = 0.0f;
    for (int c = 0; c < d; ++c) s = fmaf(a[c], b[c], s);
    return s;
}

template <typename T>
__global__ void __launch_bounds__(kThreads) row_stats_kernel(const AggParams p) {
    extern __shared__ float smem[];
    float *sQ = smem, *sK = smem + kRows * (p.d + 1);
    __shared__ int sKpos[kKeys];
    const int row0 = blockIdx.x * kRows, h = blockIdx.y, split = blockIdx.z;
    const int g = h / (p.H / p.Hkv);
    const int r = threadIdx.x / 16, lane16 = threadIdx.x % 16;
    const int i = row0 + r;
    const bool row_ok = i < p.n_q;
    const int qp = row_ok ? p.qpos[(int64_t)i * p.qps] : INT_MIN;
    const T *q = static_cast<const T *>(p.q) + h * p.qs[1];
    const T *k = static_cast<const T *>(p.k) + g * p.ks[1];
    load_rows<T>(sQ, q, p.qs[0], p.qs[2], row0, kRows, p.n_q, p.d);

    const int k_begin = split * p.keys_per_split, k_end = min(p.n_k, k_begin + p.keys_per_split);
    float2 st = make_float2(-INFINITY, 0.0f);
    for (int j0 = k_begin; j0 < k_end; j0 += kKeys) {
        __syncthreads();  // the previous tile is consumed
        if (threadIdx.x < kKeys) sKpos[threadIdx.x] = j0 + (int)threadIdx.x < k_end ? p.kpos[(int64_t)(j0 + threadIdx.x) * p.kps] : 0;
        __syncthreads();
        bool vis[2];
#pragma unroll
        for (int e = 0; e < 2; ++e) {
            const int jj = lane16 + 16 * e;
            vis[e] = row_ok && j0 + jj < k_end && (!p.causal || sKpos[jj] <= qp);
        }
        if (!__syncthreads_or(vis[0] || vis[1])) continue;  // no row of this CTA sees these keys
        load_rows<T>(sK, k, p.ks[0], p.ks[2], j0, kKeys, k_end, p.d);
        __syncthreads();
#pragma unroll
        for (int e = 0; e < 2; ++e) {
            if (!vis[e]) continue;
            const float s = p.scale * dot_smem(sQ + r * (p.d + 1), sK + (lane16 + 16 * e) * (p.d + 1), p.d);
            st = merge(st, make_float2(s, 1.0f));
        }
    }
    for (int o = 8; o > 0; o >>= 1) {  // the row's 16 lanes
        float2 other;
        other.x = __shfl_xor_sync(0xffffffffu, st.x, o);
        other.y = __shfl_xor_sync(0xffffffffu, st.y, o);
        st = merge(st, other);
    }
    if (row_ok && lane16 == 0) p.stats[((int64_t)split * p.H + h) * p.n_q + i] = st;
}

__global__ void merge_splits_kernel(const AggParams p) {
    const int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;  // h * n_q + i
    if (idx >= (int64_t)p.H * p.n_q) return;
    float2 st = p.stats[idx];
    for (int s = 1; s < p.splits; ++s) st = merge(st, p.stats[(int64_t)s * p.H * p.n_q + idx]);
    p.stats[idx] = make_float2(st.x, st.y > 0.0f ? 1.0f / st.y : 0.0f);
}

__global__ void zero_kernel(float *out, int64_t stride, int n) {
    const int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j < n) out[(int64_t)j * stride] = 0.0f;
}

template <typename T>
__global__ void __launch_bounds__(kThreads) mass_kernel(const AggParams p) {
    extern __shared__ float smem[];
    float *sK = smem, *sQ = smem + kKeys * (p.d + 1);
    __shared__ int sKpos[kKeys];
    __shared__ int sKmin;
    __shared__ float red[kRows][kKeys];
    const int j0 = blockIdx.x * kKeys, h = blockIdx.y;
    const int g = h / (p.H / p.Hkv);
    const int r = threadIdx.x / 16, lane16 = threadIdx.x % 16;
    const T *q = static_cast<const T *>(p.q) + h * p.qs[1];
    const T *k = static_cast<const T *>(p.k) + g * p.ks[1];
    load_rows<T>(sK, k, p.ks[0], p.ks[2], j0, kKeys, p.n_k, p.d);
    if (threadIdx.x < kKeys) sKpos[threadIdx.x] = j0 + (int)threadIdx.x < p.n_k ? p.kpos[(int64_t)(j0 + threadIdx.x) * p.kps] : INT_MAX;
    __syncthreads();
    if (threadIdx.x == 0) {
        int m = INT_MAX;
        for (int jj = 0; jj < kKeys; ++jj) m = min(m, sKpos[jj]);
        sKmin = m;
    }
    __syncthreads();
    float acc[2] = {0.0f, 0.0f};
    for (int row0 = 0; row0 < p.n_q; row0 += kRows) {
        const int i = row0 + r;
        float2 st = make_float2(-INFINITY, 0.0f);
        int qp = INT_MIN;
        if (i < p.n_q) {
            st = p.stats[(int64_t)h * p.n_q + i];
            qp = p.qpos[(int64_t)i * p.qps];
        }
        const bool live = st.y > 0.0f && (!p.causal || qp >= sKmin);
        __syncthreads();  // the previous Q tile is consumed
        if (!__syncthreads_or(live)) continue;
        load_rows<T>(sQ, q, p.qs[0], p.qs[2], row0, kRows, p.n_q, p.d);
        __syncthreads();
        if (!live) continue;
#pragma unroll
        for (int e = 0; e < 2; ++e) {
            const int jj = lane16 + 16 * e;
            if (j0 + jj >= p.n_k || (p.causal && sKpos[jj] > qp)) continue;
            const float s = p.scale * dot_smem(sQ + r * (p.d + 1), sK + jj * (p.d + 1), p.d);
            acc[e] += __expf(s - st.x) * st.y;
        }
    }
    red[r][lane16] = acc[0];
    red[r][lane16 + 16] = acc[1];
    __syncthreads();
    if (threadIdx.x < kKeys && j0 + (int)threadIdx.x < p.n_k) {
        float sum = 0.0f;
        for (int rr = 0; rr < kRows; ++rr) sum += red[rr][threadIdx.x];
        const int j = j0 + threadIdx.x;
        if (p.per_head) p.per_head[h * p.phs[0] + (int64_t)j * p.phs[1]] = sum;
        atomicAdd(p.out + (int64_t)j * p.outs, sum);
    }
}

template <typename T>
heed_status run(AggParams &p, int sm_count) {
    const size_t smem = sizeof(float) * (kRows + kKeys) * (p.d + 1);
    HEED_CUDA_CHECK(cudaFuncSetAttribute(row_stats_kernel<T>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
    HEED_CUDA_CHECK(cudaFuncSetAttribute(mass_kernel<T>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
    const int row_tiles = (p.n_q + kRows - 1) / kRows, key_tiles = (p.n_k + kKeys - 1) / kKeys;
    // Split the keys of pass 1 until the grid covers the machine about twice.
    int64_t want = (2LL * sm_count + (int64_t)row_tiles * p.H - 1) / ((int64_t)row_tiles * p.H);
    int splits = (int)std::max<int64_t>(1, std::min<int64_t>({want, 64, key_tiles}));
    p.keys_per_split = ((key_tiles + splits - 1) / splits) * kKeys;
    p.splits = (p.n_k + p.keys_per_split - 1) / p.keys_per_split;
    const size_t stats_bytes = sizeof(float2) * p.splits * p.H * p.n_q;
    HEED_CUDA_CHECK(cudaMallocAsync(reinterpret_cast<void **>(&p.stats), stats_bytes, 0));
    row_stats_kernel<T><<<dim3(row_tiles, p.H, p.splits), kThreads, smem>>>(p);
    cudaError_t err = cudaGetLastError();
    if (err == cudaSuccess) {
        const int64_t rows = (int64_t)p.H * p.n_q;
        merge_splits_kernel<<<(unsigned)((rows + 255) / 256), 256>>>(p);
        zero_kernel<<<(p.n_k + 255) / 256, 256>>>(p.out, p.outs, p.n_k);
        mass_kernel<T><<<dim3(key_tiles, p.H), kThreads, smem>>>(p);
        err = cudaGetLastError();
    }
    cudaFreeAsync(p.stats, 0);
    return cuda_status(err, "attention aggregation kernel launch");
}

}  // namespace

heed_status attention_aggregate(const aggregate_args &a, int device) {
    if (a.d > kMaxD)
        return fail(HEED_ERR_UNSUPPORTED, "q: CUDA attention aggregation supports head sizes up to %d, not %lld", kMaxD, (long long)a.d);
    if (a.n_q > INT32_MAX / 2 || a.n_k > INT32_MAX / 2 || a.H > 65535)
        return fail(HEED_ERR_UNSUPPORTED, "q: sizes beyond the CUDA grid (H up to 65535, rows and keys below 2^30)");
    AggParams p{};
    p.q = a.q.t->data;
    p.k = a.k.t->data;
    p.qpos = static_cast<const int32_t *>(a.q_pos.t->data);
    p.kpos = static_cast<const int32_t *>(a.k_pos.t->data);
    for (int i = 0; i < 3; ++i) {
        p.qs[i] = a.q.s[i];
        p.ks[i] = a.k.s[i];
    }
    p.qps = a.q_pos.s[0];
    p.kps = a.k_pos.s[0];
    p.out = static_cast<float *>(a.out.t->data);
    p.outs = a.out.s[0];
    p.per_head = a.out_per_head.present() ? static_cast<float *>(a.out_per_head.t->data) : nullptr;
    p.phs[0] = a.out_per_head.present() ? a.out_per_head.s[0] : 0;
    p.phs[1] = a.out_per_head.present() ? a.out_per_head.s[1] : 0;
    p.n_q = (int)a.n_q;
    p.n_k = (int)a.n_k;
    p.H = (int)a.H;
    p.Hkv = (int)a.Hkv;
    p.d = (int)a.d;
    p.scale = a.scale;
    p.causal = a.causal;

    int previous = 0, sms = 0;
    HEED_CUDA_CHECK(cudaGetDevice(&previous));
    HEED_CUDA_CHECK(cudaSetDevice(device));
    heed_status s = cuda_status(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device), "cudaDeviceGetAttribute");
    // HEED_AGGREGATE_TC=0 keeps f16/bf16 on the CUDA-core kernels too, for measurements.
    static const bool tc_allowed = [] {
        const char *e = std::getenv("HEED_AGGREGATE_TC");
        return e == nullptr || std::strcmp(e, "0") != 0;
    }();
    if (s == HEED_OK && tc_allowed && aggregate_fits_tensor_cores(a)) {
        s = attention_aggregate_tensor_cores(a, sms);
    } else if (s == HEED_OK) {
        switch (a.q.t->dtype) {
            case HEED_F32: s = run<float>(p, sms); break;
            case HEED_F16: s = run<__half>(p, sms); break;
            default: s = run<__nv_bfloat16>(p, sms); break;
        }
    }
    cudaSetDevice(previous);
    return s;
}

}  // namespace heed::cuda
