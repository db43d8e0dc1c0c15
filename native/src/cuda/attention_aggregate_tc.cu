// attention_aggregate_tc.cu - per-key attention mass on tensor cores, for f16/bf16 with d = 64
// or 128 and 16-byte aligned rows (attention_aggregate.cu's CUDA-core kernels take the rest).
//
// Pass 1 is flash attention without V: a CTA of 4 warps scores 64 query rows of one head against
// a split of the keys with mma.sync (K tiles double-buffered through cp.async) and keeps the
// online (max, sum) per row in registers, in base 2. A small kernel merges the splits into
// (max, 1/sum). Pass 2 turns it around: a CTA keeps 64 keys of one kv head in shared memory and
// streams the query rows of every head of that group past them, 64 at a time; p = 2^(s - max) /
// sum stays in fp32 registers and is summed down the columns (over rows, then across the quad's
// row groups with shuffles, then across warps), per head, then over heads.
#include <algorithm>
#include <climits>
#include <cmath>

#include "cuda/attention_cuda.hpp"
#include "cuda/cuda_check.hpp"
#include "cuda/tensor_core.cuh"

namespace heed::cuda {
namespace {

constexpr int kTile = 64;  // rows per Q tile and keys per K tile
constexpr int kWarps = 4;
constexpr int kThreads = kWarps * 32;

struct TcParams {
    const uint16_t *q, *k;
    const int32_t *qpos, *kpos;
    int64_t q_row, q_head, k_row, k_head, qps, kps;  // strides (elements)
    float *out, *per_head;
    int64_t outs, ph_head, ph_key;
    float2 *stats;  // [splits][H][n_q]
    int n_q, n_k, H, Hkv, splits, keys_per_split;
    float scale_log2;
    bool causal;
};

template <int D>
constexpr int smem_bytes() { return 3 * kTile * (D + 8) * 2; }

// rows [row0, row0 + 64) of a slice whose rows are row_stride apart, zero past n.
template <int D>
__device__ __forceinline__ void load_rows(uint16_t *dst, const uint16_t *src, int64_t row_stride, int row0, int n) {
    for (int c = threadIdx.x; c < kTile * D / 8; c += kThreads) {
        const int r = c / (D / 8), col = (c % (D / 8)) * 8;
        const bool in = row0 + r < n;
        cp_async16(dst + r * (D + 8) + col, in ? src + (int64_t)(row0 + r) * row_stride + col : src, in ? 16 : 0);
    }
}

// s[nt] (16 rows x 8 keys each) = this warp's Q rows (qf) times the 64 keys in sK.
template <typename T, int D>
__device__ __forceinline__ void scores(float (&s)[kTile / 8][4], const uint32_t (&qf)[D / 16][4], const uint16_t *sK) {
    const int lane = threadIdx.x % 32;
#pragma unroll
    for (int nt = 0; nt < kTile / 8; ++nt) {
        s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.0f;
#pragma unroll
        for (int kk = 0; kk < D / 16; kk += 2) {
            uint32_t bk[4];
            ldmatrix_x4(bk, sK + (nt * 8 + (lane & 7)) * (D + 8) + kk * 16 + (lane >> 3) * 8);
            mma16816<T>(s[nt], qf[kk], bk[0], bk[1]);
            mma16816<T>(s[nt], qf[kk + 1], bk[2], bk[3]);
        }
    }
}

template <int D>
__device__ __forceinline__ void load_q_fragments(uint32_t (&qf)[D / 16][4], const uint16_t *sQ) {
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, mi = lane >> 3, rr = lane & 7;
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk)
        ldmatrix_x4(qf[kk], sQ + (warp * 16 + rr + (mi & 1) * 8) * (D + 8) + kk * 16 + (mi >> 1) * 8);
}

template <typename T, int D>
__global__ void __launch_bounds__(kThreads) stats_kernel(const TcParams p) {
    extern __shared__ __align__(16) uint16_t smem[];
    constexpr int LD = D + 8;
    uint16_t *sQ = smem, *sK = smem + kTile * LD;  // two K buffers
    __shared__ int sKpos[2][kTile];
    __shared__ int sQmax;
    const int row0 = blockIdx.x * kTile, h = blockIdx.y, split = blockIdx.z;
    const int g = h / (p.H / p.Hkv);
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, gid = lane >> 2, tig = lane & 3;
    const uint16_t *q = p.q + h * p.q_head, *k = p.k + g * p.k_head;
    const int k_begin = split * p.keys_per_split, k_end = min(p.n_k, k_begin + p.keys_per_split);
    const int rows[2] = {row0 + warp * 16 + gid, row0 + warp * 16 + gid + 8};
    int qp[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) qp[r] = rows[r] < p.n_q ? p.qpos[(int64_t)rows[r] * p.qps] : INT_MIN;

    auto load_keys = [&](int j0, int buf) {
        load_rows<D>(sK + buf * kTile * LD, k, p.k_row, j0, k_end);
        if (threadIdx.x < kTile) sKpos[buf][threadIdx.x] = j0 + (int)threadIdx.x < k_end ? p.kpos[(int64_t)(j0 + threadIdx.x) * p.kps] : INT_MAX;
    };
    load_rows<D>(sQ, q, p.q_row, row0, p.n_q);
    if (threadIdx.x == 0) {
        int m = INT_MIN;
        for (int r = row0; r < min(p.n_q, row0 + kTile); ++r) m = max(m, p.qpos[(int64_t)r * p.qps]);
        sQmax = m;
    }
    load_keys(k_begin, 0);
    cp_async_commit();
    cp_async_wait_all();
    __syncthreads();
    uint32_t qf[D / 16][4];
    load_q_fragments<D>(qf, sQ);
    const int qmax = sQmax;

    float row_max[2] = {-INFINITY, -INFINITY}, row_sum[2] = {0.0f, 0.0f};
    int buf = 0;
    for (int j0 = k_begin; j0 < k_end; j0 += kTile) {
        if (j0 + kTile < k_end) load_keys(j0 + kTile, buf ^ 1);
        cp_async_commit();
        // Causal: skip a tile whose keys all come after every row of this CTA.
        const bool live = !p.causal || __syncthreads_or(threadIdx.x < kTile && sKpos[buf][threadIdx.x] <= qmax);
        if (live) {
            float s[kTile / 8][4];
            scores<T, D>(s, qf, sK + buf * kTile * LD);
            // The tile's last key position (INT_MAX when the tile runs past the split): a row at
            // or after it sees every key, and needs no test per score.
            int kmax = max(sKpos[buf][lane], sKpos[buf][lane + 32]);
#pragma unroll
            for (int o = 16; o > 0; o >>= 1) kmax = max(kmax, __shfl_xor_sync(0xffffffffu, kmax, o));
            const bool whole = j0 + kTile <= k_end;
#pragma unroll
            for (int r = 0; r < 2; ++r) {
                const bool sees_all = whole && (!p.causal || kmax <= qp[r]);
                float mx = -INFINITY;
                if (sees_all) {  // raw scores: the scale is positive, so it commutes with the max
#pragma unroll
                    for (int nt = 0; nt < kTile / 8; ++nt) mx = fmaxf(mx, fmaxf(s[nt][2 * r], s[nt][2 * r + 1]));
                    mx *= p.scale_log2;
                } else {
#pragma unroll
                    for (int nt = 0; nt < kTile / 8; ++nt)
#pragma unroll
                        for (int c = 0; c < 2; ++c) {
                            const int jj = nt * 8 + 2 * tig + c;
                            const bool vis = j0 + jj < k_end && (!p.causal || sKpos[buf][jj] <= qp[r]);
                            const float x = vis ? s[nt][2 * r + c] * p.scale_log2 : -INFINITY;
                            s[nt][2 * r + c] = x;
                            mx = fmaxf(mx, x);
                        }
                }
                mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
                mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
                const float m_new = fmaxf(row_max[r], mx);
                const float base = m_new == -INFINITY ? 0.0f : m_new;
                float sum = 0.0f;
                if (sees_all) {
#pragma unroll
                    for (int nt = 0; nt < kTile / 8; ++nt)
                        sum += fast_exp2(fmaf(s[nt][2 * r], p.scale_log2, -base)) + fast_exp2(fmaf(s[nt][2 * r + 1], p.scale_log2, -base));
                } else {
#pragma unroll
                    for (int nt = 0; nt < kTile / 8; ++nt) sum += fast_exp2(s[nt][2 * r] - base) + fast_exp2(s[nt][2 * r + 1] - base);
                }
                row_sum[r] = row_sum[r] * fast_exp2(row_max[r] - base) + sum;
                row_max[r] = m_new;
            }
        }
        cp_async_wait_all();
        __syncthreads();
        buf ^= 1;
    }
#pragma unroll
    for (int r = 0; r < 2; ++r) {
        row_sum[r] += __shfl_xor_sync(0xffffffffu, row_sum[r], 1);
        row_sum[r] += __shfl_xor_sync(0xffffffffu, row_sum[r], 2);
        if (tig == 0 && rows[r] < p.n_q)
            p.stats[((int64_t)split * p.H + h) * p.n_q + rows[r]] = make_float2(row_max[r], row_sum[r]);
    }
}

__global__ void merge_kernel(const TcParams p) {
    const int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (int64_t)p.H * p.n_q) return;
    float m = -INFINITY;
    for (int s = 0; s < p.splits; ++s) m = fmaxf(m, p.stats[(int64_t)s * p.H * p.n_q + idx].x);
    float l = 0.0f;
    if (m != -INFINITY)
        for (int s = 0; s < p.splits; ++s) {
            const float2 st = p.stats[(int64_t)s * p.H * p.n_q + idx];
            l += st.y * exp2f(st.x - m);
        }
    p.stats[idx] = make_float2(m, l > 0.0f ? 1.0f / l : 0.0f);
}

__global__ void zero_kernel(float *out, int64_t stride, int n) {
    const int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j < n) out[(int64_t)j * stride] = 0.0f;
}

template <typename T, int D>
__global__ void __launch_bounds__(kThreads) mass_kernel(const TcParams p) {
    extern __shared__ __align__(16) uint16_t smem[];
    constexpr int LD = D + 8;
    uint16_t *sK = smem, *sQ = smem + kTile * LD;  // two Q buffers
    __shared__ int sKpos[kTile], sQpos[2][kTile];
    __shared__ float sM[2][kTile], sL[2][kTile], sRed[kWarps][kTile], sTot[kTile];
    __shared__ int sKmin, sKmax;
    const int j0 = blockIdx.x * kTile, g = blockIdx.y, group = p.H / p.Hkv;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, gid = lane >> 2, tig = lane & 3;
    const int row_tiles = (p.n_q + kTile - 1) / kTile, steps = group * row_tiles;

    load_rows<D>(sK, p.k + g * p.k_head, p.k_row, j0, p.n_k);
    if (threadIdx.x < kTile) {
        sKpos[threadIdx.x] = j0 + (int)threadIdx.x < p.n_k ? p.kpos[(int64_t)(j0 + threadIdx.x) * p.kps] : INT_MAX;
        sTot[threadIdx.x] = 0.0f;
    }
    // Step `it` is query head g*group + it / row_tiles, rows (it % row_tiles) * 64 ...
    auto load_step = [&](int it, int buf) {
        const int h = g * group + it / row_tiles, row0 = (it % row_tiles) * kTile;
        load_rows<D>(sQ + buf * kTile * LD, p.q + h * p.q_head, p.q_row, row0, p.n_q);
        if (threadIdx.x < kTile) {
            const int i = row0 + threadIdx.x;
            float2 st = make_float2(0.0f, 0.0f);
            int qp = INT_MIN;
            if (i < p.n_q) {
                st = p.stats[(int64_t)h * p.n_q + i];
                qp = p.qpos[(int64_t)i * p.qps];
            }
            sM[buf][threadIdx.x] = st.x;
            sL[buf][threadIdx.x] = st.y;
            sQpos[buf][threadIdx.x] = qp;
        }
    };
    load_step(0, 0);
    cp_async_commit();
    cp_async_wait_all();
    __syncthreads();
    if (threadIdx.x == 0) {
        int lo = INT_MAX, hi = INT_MIN;
        for (int jj = 0; jj < kTile; ++jj) lo = min(lo, sKpos[jj]), hi = max(hi, sKpos[jj]);
        sKmin = lo, sKmax = hi;
    }
    __syncthreads();
    const int kmin = sKmin, kmax = sKmax;       // kmax is INT_MAX when the tile runs past n_k
    const bool whole = j0 + kTile <= p.n_k;

    float col[kTile / 8][2];
#pragma unroll
    for (int nt = 0; nt < kTile / 8; ++nt) col[nt][0] = col[nt][1] = 0.0f;
    int buf = 0;
    for (int it = 0; it < steps; ++it) {
        if (it + 1 < steps) load_step(it + 1, buf ^ 1);
        cp_async_commit();
        // Rows that see none of these keys (blind rows, or causal rows before them) add nothing.
        const bool live = __syncthreads_or(threadIdx.x < kTile && sL[buf][threadIdx.x] > 0.0f &&
                                           (!p.causal || sQpos[buf][threadIdx.x] >= kmin));
        if (live) {
            uint32_t qf[D / 16][4];
            load_q_fragments<D>(qf, sQ + buf * kTile * LD);
            float s[kTile / 8][4];
            scores<T, D>(s, qf, sK);
#pragma unroll
            for (int r = 0; r < 2; ++r) {
                const int rr = warp * 16 + gid + 8 * r;
                const float m = sM[buf][rr], inv = sL[buf][rr];
                const int qp = sQpos[buf][rr];
                if (inv > 0.0f && whole && (!p.causal || kmax <= qp)) {  // the row sees every key of the tile
#pragma unroll
                    for (int nt = 0; nt < kTile / 8; ++nt)
#pragma unroll
                        for (int c = 0; c < 2; ++c) col[nt][c] = fmaf(fast_exp2(fmaf(s[nt][2 * r + c], p.scale_log2, -m)), inv, col[nt][c]);
                } else {
#pragma unroll
                    for (int nt = 0; nt < kTile / 8; ++nt)
#pragma unroll
                        for (int c = 0; c < 2; ++c) {
                            const int jj = nt * 8 + 2 * tig + c;
                            const bool vis = inv > 0.0f && j0 + jj < p.n_k && (!p.causal || sKpos[jj] <= qp);
                            col[nt][c] += vis ? fast_exp2(fmaf(s[nt][2 * r + c], p.scale_log2, -m)) * inv : 0.0f;
                        }
                }
            }
        }
        if (it % row_tiles == row_tiles - 1) {  // this head is done: sum the columns over its rows
            const int h = g * group + it / row_tiles;
#pragma unroll
            for (int nt = 0; nt < kTile / 8; ++nt)
#pragma unroll
                for (int c = 0; c < 2; ++c) {
                    float v = col[nt][c];
                    v += __shfl_xor_sync(0xffffffffu, v, 4);
                    v += __shfl_xor_sync(0xffffffffu, v, 8);
                    v += __shfl_xor_sync(0xffffffffu, v, 16);
                    if (gid == 0) sRed[warp][nt * 8 + 2 * tig + c] = v;
                    col[nt][c] = 0.0f;
                }
            __syncthreads();
            if (threadIdx.x < kTile) {
                const float v = sRed[0][threadIdx.x] + sRed[1][threadIdx.x] + sRed[2][threadIdx.x] + sRed[3][threadIdx.x];
                sTot[threadIdx.x] += v;
                if (p.per_head && j0 + (int)threadIdx.x < p.n_k)
                    p.per_head[h * p.ph_head + (int64_t)(j0 + threadIdx.x) * p.ph_key] = v;
            }
        }
        cp_async_wait_all();
        __syncthreads();
        buf ^= 1;
    }
    if (threadIdx.x < kTile && j0 + (int)threadIdx.x < p.n_k) atomicAdd(p.out + (int64_t)(j0 + threadIdx.x) * p.outs, sTot[threadIdx.x]);
}

template <typename T, int D>
heed_status run(TcParams &p, int sm_count) {
    const int smem = smem_bytes<D>();
    HEED_CUDA_CHECK(cudaFuncSetAttribute(stats_kernel<T, D>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
    HEED_CUDA_CHECK(cudaFuncSetAttribute(mass_kernel<T, D>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
    const int row_tiles = (p.n_q + kTile - 1) / kTile, key_tiles = (p.n_k + kTile - 1) / kTile;
    const int64_t ctas = (int64_t)row_tiles * p.H;
    // Enough key splits for two waves of the 4 CTAs an SM holds (shared memory bounds it): with
    // few query rows (ICR, InfiniRetri) the rows alone give far fewer CTAs than SMs.
    const int64_t want = (8LL * sm_count + ctas - 1) / ctas;
    const int splits = (int)std::max<int64_t>(1, std::min<int64_t>({want, 64, key_tiles}));
    p.keys_per_split = ((key_tiles + splits - 1) / splits) * kTile;
    p.splits = (p.n_k + p.keys_per_split - 1) / p.keys_per_split;
    HEED_CUDA_CHECK(cudaMallocAsync(reinterpret_cast<void **>(&p.stats), sizeof(float2) * p.splits * p.H * p.n_q, 0));
    stats_kernel<T, D><<<dim3(row_tiles, p.H, p.splits), kThreads, smem>>>(p);
    const int64_t rows = (int64_t)p.H * p.n_q;
    merge_kernel<<<(unsigned)((rows + 255) / 256), 256>>>(p);
    zero_kernel<<<(p.n_k + 255) / 256, 256>>>(p.out, p.outs, p.n_k);
    mass_kernel<T, D><<<dim3(key_tiles, p.Hkv), kThreads, smem>>>(p);
    const cudaError_t err = cudaGetLastError();
    cudaFreeAsync(p.stats, 0);
    return cuda_status(err, "attention aggregation (tensor cores) kernel launch");
}

bool aligned_rows(const tview &t) {
    return (t.t->shape[2] == 1 || t.s[2] == 1) && reinterpret_cast<uintptr_t>(t.t->data) % 16 == 0 && t.s[0] % 8 == 0 &&
           t.s[1] % 8 == 0;
}

}  // namespace

bool aggregate_fits_tensor_cores(const aggregate_args &a) {
    return (a.q.t->dtype == HEED_F16 || a.q.t->dtype == HEED_BF16) && (a.d == 64 || a.d == 128) && aligned_rows(a.q) &&
           aligned_rows(a.k) && a.Hkv <= 65535 && a.H <= 65535;
}

heed_status attention_aggregate_tensor_cores(const aggregate_args &a, int sm_count) {
    TcParams p{};
    p.q = static_cast<const uint16_t *>(a.q.t->data);
    p.k = static_cast<const uint16_t *>(a.k.t->data);
    p.qpos = static_cast<const int32_t *>(a.q_pos.t->data);
    p.kpos = static_cast<const int32_t *>(a.k_pos.t->data);
    p.q_row = a.q.s[0];
    p.q_head = a.q.s[1];
    p.k_row = a.k.s[0];
    p.k_head = a.k.s[1];
    p.qps = a.q_pos.s[0];
    p.kps = a.k_pos.s[0];
    p.out = static_cast<float *>(a.out.t->data);
    p.outs = a.out.s[0];
    p.per_head = a.out_per_head.present() ? static_cast<float *>(a.out_per_head.t->data) : nullptr;
    p.ph_head = a.out_per_head.present() ? a.out_per_head.s[0] : 0;
    p.ph_key = a.out_per_head.present() ? a.out_per_head.s[1] : 0;
    p.n_q = (int)a.n_q;
    p.n_k = (int)a.n_k;
    p.H = (int)a.H;
    p.Hkv = (int)a.Hkv;
    p.scale_log2 = a.scale * 1.4426950408889634f;
    p.causal = a.causal;
    const bool half = a.q.t->dtype == HEED_F16;
    if (a.d == 64) return half ? run<__half, 64>(p, sm_count) : run<__nv_bfloat16, 64>(p, sm_count);
    return half ? run<__half, 128>(p, sm_count) : run<__nv_bfloat16, 128>(p, sm_count);
}

}  // namespace heed::cuda
