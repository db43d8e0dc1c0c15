// linear_attention.cu - causal chunked linear attention on CUDA (Lightning-Attention-2 form).
//
// One block per (batch, head, 32-wide slice of dv) walks the chunks of 64 tokens in order,
// holding its slice of the state S (d x 32) and z in shared memory:
//   A   = (Q K^T) * lambda^(t-s) masked to s <= t          (64 x 64, exact inside the chunk)
//   O   = lambda^(t+1) Q S + A V                           (earlier chunks through the state)
//   den = lambda^(t+1) Q z + rowsum(A)                     (normalizer, when asked)
//   S   = lambda^L S + (lambda^(L-1-s) K)^T V,  z likewise
// The cost per token does not grow with N. f32 arithmetic throughout.
#include <cmath>

#include "cuda/linear_kv_cuda.hpp"

namespace heed::linear_kv {
namespace {

constexpr int C = HEED_LINEAR_CHUNK;  // tokens per chunk
constexpr int E = 32;                 // dv columns per block
constexpr int T = 256;                // threads per block
constexpr int MAXD = 128;

struct linear_params {
    dview q, k, v, decay, s_in, z_in, out, s_out, z_out;
    int has_decay, has_s_in, has_z_in, has_s_out, has_z_out;
    int feature_map, normalize;
    float eps;
    int64_t H, N;
    int d, dv;
};

__device__ __forceinline__ float feature(float x, int map) {
    if (map == HEED_LINEAR_FEATURE_ELU1) return x > 0.0f ? x + 1.0f : expf(x);
    return x;
}

size_t smem_floats(int d) {
    const int Dp = d + 1;
    return (size_t)2 * C * Dp + C * (E + 1) + C * (C + 1) + (size_t)d * (E + 1) + d + (C + 1) + C;
}

__global__ void __launch_bounds__(T) linear_chunk_kernel(linear_params p) {
    extern __shared__ float sm[];
    const int d = p.d, Dp = d + 1;
    float *Qs = sm;                 // [C][Dp]
    float *Ks = Qs + C * Dp;        // [C][Dp]
    float *Vs = Ks + C * Dp;        // [C][E+1]
    float *As = Vs + C * (E + 1);   // [C][C+1]
    float *Ss = As + C * (C + 1);   // [d][E+1]
    float *zs = Ss + d * (E + 1);   // [d]
    float *pw = zs + d;             // [C+1]: lambda^i
    float *den = pw + (C + 1);      // [C]

    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int64_t b = blockIdx.x / p.H, h = blockIdx.x % p.H;
    const int e0 = blockIdx.y * E, ew = min(E, p.dv - e0);

    const float lambda = p.has_decay ? dload(p.decay, h * p.decay.s[0]) : 1.0f;
    if (tid <= C) pw[tid] = powf(lambda, (float)tid);
    for (int i = tid; i < d * E; i += T) {
        const int kk = i / E, e = i % E;
        float x = 0.0f;
        if (p.has_s_in && e < ew) x = dload(p.s_in, b * p.s_in.s[0] + h * p.s_in.s[1] + kk * p.s_in.s[2] + (e0 + e) * p.s_in.s[3]);
        Ss[kk * (E + 1) + e] = x;
    }
    for (int i = tid; i < d; i += T) zs[i] = p.has_z_in ? dload(p.z_in, b * p.z_in.s[0] + h * p.z_in.s[1] + i * p.z_in.s[2]) : 0.0f;
    __syncthreads();

    const int64_t qb = b * p.q.s[0] + h * p.q.s[1], kb = b * p.k.s[0] + h * p.k.s[1];
    const int64_t vb = b * p.v.s[0] + h * p.v.s[1], ob = b * p.out.s[0] + h * p.out.s[1];

    for (int64_t c0 = 0; c0 < p.N; c0 += C) {
        const int L = (int)min((int64_t)C, p.N - c0);
        // Load the chunk (zero rows past the end, so they add nothing).
        for (int i = tid; i < C * d; i += T) {
            const int t = i / d, kk = i % d;
            float qv = 0.0f, kv = 0.0f;
            if (t < L) {
                qv = feature(dload(p.q, qb + (c0 + t) * p.q.s[2] + kk * p.q.s[3]), p.feature_map);
                kv = feature(dload(p.k, kb + (c0 + t) * p.k.s[2] + kk * p.k.s[3]), p.feature_map);
            }
            Qs[t * Dp + kk] = qv;
            Ks[t * Dp + kk] = kv;
        }
        for (int i = tid; i < C * E; i += T) {
            const int t = i / E, e = i % E;
            Vs[t * (E + 1) + e] = (t < L && e < ew) ? dload(p.v, vb + (c0 + t) * p.v.s[2] + (e0 + e) * p.v.s[3]) : 0.0f;
        }
        __syncthreads();

        // A = decay-masked Q K^T: each thread a 4 x 4 tile (rows ty + 16i, columns tx + 16j).
        {
            const int ty = tid / 16, tx = tid % 16;
            float acc[4][4] = {};
            for (int kk = 0; kk < d; ++kk) {
                float qa[4], kv[4];
#pragma unroll
                for (int i = 0; i < 4; ++i) qa[i] = Qs[(ty + 16 * i) * Dp + kk];
#pragma unroll
                for (int j = 0; j < 4; ++j) kv[j] = Ks[(tx + 16 * j) * Dp + kk];
#pragma unroll
                for (int i = 0; i < 4; ++i)
#pragma unroll
                    for (int j = 0; j < 4; ++j) acc[i][j] = fmaf(qa[i], kv[j], acc[i][j]);
            }
#pragma unroll
            for (int i = 0; i < 4; ++i)
#pragma unroll
                for (int j = 0; j < 4; ++j) {
                    const int t = ty + 16 * i, s = tx + 16 * j;
                    As[t * (C + 1) + s] = s <= t ? acc[i][j] * pw[t - s] : 0.0f;
                }
        }
        __syncthreads();

        if (p.normalize && tid < C) {  // den_t = lambda^(t+1) q_t.z + sum_s A[t][s]
            const int t = tid;
            float intra = 0.0f, inter = 0.0f;
            for (int s = 0; s <= t; ++s) intra += As[t * (C + 1) + s];
            for (int kk = 0; kk < d; ++kk) inter = fmaf(Qs[t * Dp + kk], zs[kk], inter);
            float x = fmaf(pw[t + 1], inter, intra);
            if (fabsf(x) < p.eps) x = x < 0.0f ? -p.eps : p.eps;
            den[t] = x;
        }
        // O rows t = warp + 8i, column e = lane.
        {
            float acc[8];
#pragma unroll
            for (int i = 0; i < 8; ++i) acc[i] = 0.0f;
            for (int kk = 0; kk < d; ++kk) {
                const float sv = Ss[kk * (E + 1) + lane];
#pragma unroll
                for (int i = 0; i < 8; ++i) acc[i] = fmaf(Qs[(warp + 8 * i) * Dp + kk], sv, acc[i]);
            }
#pragma unroll
            for (int i = 0; i < 8; ++i) acc[i] *= pw[warp + 8 * i + 1];
            for (int s = 0; s < L; ++s) {  // A is zero above the diagonal
                const float vv = Vs[s * (E + 1) + lane];
#pragma unroll
                for (int i = 0; i < 8; ++i) acc[i] = fmaf(As[(warp + 8 * i) * (C + 1) + s], vv, acc[i]);
            }
            __syncthreads();  // den written
#pragma unroll
            for (int i = 0; i < 8; ++i) {
                const int t = warp + 8 * i;
                if (t < L && lane < ew) {
                    const float o = p.normalize ? acc[i] / den[t] : acc[i];
                    dstore(p.out, ob + (c0 + t) * p.out.s[2] + (e0 + lane) * p.out.s[3], o);
                }
            }
        }
        // State update: S rows kk = warp + 8i, column e = lane; z by the first d threads.
        {
            float acc[MAXD / 8];
#pragma unroll
            for (int i = 0; i < MAXD / 8; ++i) acc[i] = 0.0f;
            for (int s = 0; s < L; ++s) {
                const float vv = Vs[s * (E + 1) + lane] * pw[L - 1 - s];
#pragma unroll
                for (int i = 0; i < MAXD / 8; ++i) {
                    const int kk = warp + 8 * i;
                    if (kk < d) acc[i] = fmaf(Ks[s * Dp + kk], vv, acc[i]);
                }
            }
            float zacc = 0.0f;
            if (tid < d)
                for (int s = 0; s < L; ++s) zacc = fmaf(Ks[s * Dp + tid], pw[L - 1 - s], zacc);
            __syncthreads();  // every reader of Ss/zs for this chunk is done
#pragma unroll
            for (int i = 0; i < MAXD / 8; ++i) {
                const int kk = warp + 8 * i;
                if (kk < d) Ss[kk * (E + 1) + lane] = fmaf(pw[L], Ss[kk * (E + 1) + lane], acc[i]);
            }
            if (tid < d) zs[tid] = fmaf(pw[L], zs[tid], zacc);
        }
        __syncthreads();
    }

    if (p.has_s_out)
        for (int i = tid; i < d * E; i += T) {
            const int kk = i / E, e = i % E;
            if (e < ew)
                dstore(p.s_out, b * p.s_out.s[0] + h * p.s_out.s[1] + kk * p.s_out.s[2] + (e0 + e) * p.s_out.s[3],
                       Ss[kk * (E + 1) + e]);
        }
    if (p.has_z_out && blockIdx.y == 0)
        for (int i = tid; i < d; i += T) dstore(p.z_out, b * p.z_out.s[0] + h * p.z_out.s[1] + i * p.z_out.s[2], zs[i]);
}

// z_in read into a contiguous buffer: every dv slice of a head reads z_in, and the first one
// writes z_out, so when both are the same memory the reads must come first.
__global__ void copy_z_kernel(dview src, float *dst, int64_t H, int d, int64_t total) {
    const int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
    if (i >= total) return;
    const int64_t kk = i % d, h = (i / d) % H, b = i / ((int64_t)d * H);
    dst[i] = dload(src, b * src.s[0] + h * src.s[1] + kk * src.s[2]);
}

}  // namespace

heed_status linear_attention_cuda(const linear_args &a, int device) {
    device_scope scope(device);
    HEED_CUDA_CHECK(scope.err);
    if (a.d > MAXD) return fail(HEED_ERR_UNSUPPORTED, "q: the CUDA linear attention takes d <= %d", MAXD);
    linear_params p{};
    p.q = make_view(a.q), p.k = make_view(a.k), p.v = make_view(a.v), p.decay = make_view(a.decay);
    p.s_in = make_view(a.state_in), p.z_in = make_view(a.z_in), p.out = make_view(a.out);
    p.s_out = make_view(a.state_out), p.z_out = make_view(a.z_out);
    p.has_decay = a.decay != nullptr, p.has_s_in = a.state_in != nullptr, p.has_z_in = a.z_in != nullptr;
    p.has_s_out = a.state_out != nullptr, p.has_z_out = a.z_out != nullptr;
    p.feature_map = a.feature_map, p.normalize = a.normalize, p.eps = a.epsilon;
    p.H = a.H, p.N = a.N, p.d = (int)a.d, p.dv = (int)a.dv;
    float *z_copy = nullptr;
    if (a.z_in && a.z_out && a.z_in->data == a.z_out->data) {
        const int64_t total = a.B * a.H * a.d;
        HEED_CUDA_CHECK(cudaMallocAsync((void **)&z_copy, (size_t)total * sizeof(float), 0));
        copy_z_kernel<<<(unsigned)((total + 255) / 256), 256>>>(p.z_in, z_copy, a.H, (int)a.d, total);
        HEED_CUDA_CHECK_LAUNCH("copy_z_kernel");
        p.z_in = dview{z_copy, HEED_F32, {a.H * a.d, a.d, 1, 0}};
    }
    const size_t smem = smem_floats(p.d) * sizeof(float);
    HEED_CUDA_CHECK(cudaFuncSetAttribute(linear_chunk_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
    const int64_t bh = a.B * a.H;
    if (bh > 0x7fffffff) return fail(HEED_ERR_UNSUPPORTED, "q: batch x heads above 2^31 on CUDA");
    dim3 grid((unsigned)bh, (unsigned)((a.dv + E - 1) / E));
    if (grid.y > 65535) return fail(HEED_ERR_UNSUPPORTED, "v: dv too large for the CUDA linear attention");
    linear_chunk_kernel<<<grid, T, smem>>>(p);
    HEED_CUDA_CHECK_LAUNCH("linear_chunk_kernel");
    if (z_copy) HEED_CUDA_CHECK(cudaFreeAsync(z_copy, 0));
    return ok();
}

}  // namespace heed::linear_kv
