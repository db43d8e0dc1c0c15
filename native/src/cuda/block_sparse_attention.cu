// block_sparse_attention.cu - the block mask estimate on CUDA. (The block-sparse forward is
// flash_attention.cu's kernel given the mask.)
//
// Two kernels: mean-pool every Q and K block into f32 (one CTA per block, a thread per column),
// then one CTA per (batch, head, query block) scores the visible key blocks, ranks them by score
// (ties to the lower block), and keeps blocks while the softmax mass ranked before them is
// below coverage.
#include <cmath>

#include "cuda/attention_cuda.hpp"
#include "cuda/cuda_check.hpp"
#include "cuda/tensor_core.cuh"

namespace heed::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kMaxKeyBlocks = 4096;  // shared memory holds a score and a prefix per key block

// pooled[(b * heads + h) * blocks + blk][c] = mean of rows of that block, column c.
template <typename T>
__global__ void pool_kernel(const T *x, int64_t sb, int64_t sh, int64_t sn, int64_t sd, int heads, int n, int d,
                            int block, int blocks, float *pooled) {
    const int blk = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
    const int r0 = blk * block, r1 = min(n, r0 + block);
    const T *base = x + b * sb + h * sh;
    float *out = pooled + ((int64_t)(b * heads + h) * blocks + blk) * d;
    for (int c = threadIdx.x; c < d; c += blockDim.x) {
        double sum = 0.0;
        for (int r = r0; r < r1; ++r) sum += to_float<T>(base[(int64_t)r * sn + c * sd]);
        out[c] = (float)(sum / (double)(r1 - r0));
    }
}

struct SelectParams {
    const float *qbar, *kbar;
    uint8_t *mask;
    int64_t ms[4];
    int H, Hkv, nqb, nkb, d;
    float scale, coverage;
    bool causal;
};

__global__ void __launch_bounds__(kThreads) select_kernel(const SelectParams p) {
    extern __shared__ __align__(8) unsigned char smem_raw[];
    double *prefix = reinterpret_cast<double *>(smem_raw);             // by rank
    float *score = reinterpret_cast<float *>(prefix + p.nkb);          // by key block
    __shared__ float red[kThreads / 32];
    __shared__ float best_s;

    const int qb = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
    const int g = h / (p.H / p.Hkv);
    const float *qbar = p.qbar + ((int64_t)(b * p.H + h) * p.nqb + qb) * p.d;
    const float *kbar = p.kbar + (int64_t)(b * p.Hkv + g) * p.nkb * p.d;
    const int diag = min(qb, p.nkb - 1);
    const int visible = p.causal ? diag + 1 : p.nkb;

    // Scores, one warp per key block.
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    for (int kb = warp; kb < visible; kb += kThreads / 32) {
        float s = 0.0f;
        for (int c = lane; c < p.d; c += 32) s += qbar[c] * kbar[(int64_t)kb * p.d + c];
        for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
        if (lane == 0) score[kb] = s * p.scale;
    }
    __syncthreads();
    float mx = -INFINITY;
    for (int kb = threadIdx.x; kb < visible; kb += kThreads) mx = fmaxf(mx, score[kb]);
    for (int o = 16; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
    if (lane == 0) red[warp] = mx;
    __syncthreads();
    if (threadIdx.x == 0) {
        float m = red[0];
        for (int w = 1; w < kThreads / 32; ++w) m = fmaxf(m, red[w]);
        best_s = m;
    }
    __syncthreads();
    const float best = best_s;

    // Rank = blocks with a higher score, or an equal score and a lower index; place exp by rank.
    for (int kb = threadIdx.x; kb < visible; kb += kThreads) {
        const float s = score[kb];
        int rank = 0;
        for (int o = 0; o < visible; ++o) rank += (score[o] > s) || (score[o] == s && o < kb);
        prefix[rank] = exp((double)s - (double)best);
    }
    __syncthreads();
    if (threadIdx.x == 0) {  // exclusive prefix of the normalized mass, in rank order
        double total = 0.0;
        for (int r = 0; r < visible; ++r) total += prefix[r];
        double before = 0.0;
        for (int r = 0; r < visible; ++r) {
            const double pr = prefix[r] / total;
            prefix[r] = before;
            before += pr;
        }
    }
    __syncthreads();
    uint8_t *mrow = p.mask + b * p.ms[0] + h * p.ms[1] + (int64_t)qb * p.ms[2];
    for (int kb = threadIdx.x; kb < p.nkb; kb += kThreads) {
        uint8_t keep = 0;
        if (kb < visible) {
            const float s = score[kb];
            int rank = 0;
            for (int o = 0; o < visible; ++o) rank += (score[o] > s) || (score[o] == s && o < kb);
            keep = p.coverage >= 1.0f || prefix[rank] < (double)p.coverage;
        }
        if (kb == 0 || kb == diag) keep = 1;
        mrow[kb * p.ms[3]] = keep;
    }
}

template <typename T>
heed_status pool(const tview &t, int heads, int n, int d, int block, int blocks, int B, float *out) {
    dim3 grid(blocks, heads, B);
    pool_kernel<T><<<grid, 128>>>(static_cast<const T *>(t.t->data), t.s[0], t.s[1], t.s[2], t.s[3], heads, n, d, block,
                                  blocks, out);
    HEED_CUDA_CHECK_LAUNCH("block mask pool kernel launch");
    return HEED_OK;
}

}  // namespace

heed_status block_mask_estimate(const mask_estimate_args &a, int device) {
    const int64_t nqb = (a.Nq + a.block - 1) / a.block, nkb = (a.Nk + a.block - 1) / a.block;
    if (nkb > kMaxKeyBlocks)
        return fail(HEED_ERR_UNSUPPORTED, "k: the CUDA mask estimate handles up to %d key blocks, got %lld", kMaxKeyBlocks, (long long)nkb);
    if (a.H > 65535 || a.B > 65535 || nqb > INT32_MAX)
        return fail(HEED_ERR_UNSUPPORTED, "q: sizes beyond the CUDA grid");
    int previous = 0;
    HEED_CUDA_CHECK(cudaGetDevice(&previous));
    HEED_CUDA_CHECK(cudaSetDevice(device));
    float *qbar = nullptr, *kbar = nullptr;
    const size_t qbytes = sizeof(float) * a.B * a.H * nqb * a.d, kbytes = sizeof(float) * a.B * a.Hkv * nkb * a.d;
    heed_status s = cuda_status(cudaMallocAsync(reinterpret_cast<void **>(&qbar), qbytes, 0), "cudaMallocAsync");
    if (s == HEED_OK) s = cuda_status(cudaMallocAsync(reinterpret_cast<void **>(&kbar), kbytes, 0), "cudaMallocAsync");
    if (s == HEED_OK) {
        const int dt = a.q.t->dtype;
        auto run = [&](auto tag) -> heed_status {
            using T = decltype(tag);
            heed_status r = pool<T>(a.q, (int)a.H, (int)a.Nq, (int)a.d, (int)a.block, (int)nqb, (int)a.B, qbar);
            if (r == HEED_OK) r = pool<T>(a.k, (int)a.Hkv, (int)a.Nk, (int)a.d, (int)a.block, (int)nkb, (int)a.B, kbar);
            return r;
        };
        s = dt == HEED_F32 ? run(float{}) : dt == HEED_F16 ? run(__half{}) : run(__nv_bfloat16{});
    }
    if (s == HEED_OK) {
        SelectParams p{};
        p.qbar = qbar;
        p.kbar = kbar;
        p.mask = static_cast<uint8_t *>(a.mask.t->data);
        for (int i = 0; i < 4; ++i) p.ms[i] = a.mask.s[i];
        p.H = (int)a.H;
        p.Hkv = (int)a.Hkv;
        p.nqb = (int)nqb;
        p.nkb = (int)nkb;
        p.d = (int)a.d;
        p.scale = a.scale;
        p.coverage = a.coverage;
        p.causal = a.causal;
        const size_t smem = nkb * (sizeof(double) + sizeof(float));
        s = cuda_status(cudaFuncSetAttribute(select_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem),
                        "cudaFuncSetAttribute");
        if (s == HEED_OK) {
            select_kernel<<<dim3((unsigned)nqb, (unsigned)a.H, (unsigned)a.B), kThreads, smem>>>(p);
            s = cuda_status(cudaGetLastError(), "block mask select kernel launch");
        }
    }
    if (qbar) cudaFreeAsync(qbar, 0);
    if (kbar) cudaFreeAsync(kbar, 0);
    cudaSetDevice(previous);
    return s;
}

}  // namespace heed::cuda
