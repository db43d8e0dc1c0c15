// linear_attention.cu - causal chunked linear attention on CUDA (Lightning-Attention-2 form).
//
// One block per (batch, head, 32-wide slice of dv) walks the chunks of 64 tokens in order,
// holding its slice of the state S (d x 32) and z in shared memory:
//   A   = (Q K^T) * lambda^(t-s) masked to s <= t          (64 x 64, exact inside the chunk)
//   O   = lambda^(t+1) Q S + A V                           (earlier chunks through the state)
//   den = lambda^(t+1) Q z + rowsum(A)                     (normalizer, when asked)
//   S   = lambda^L S + (lambda^(L-1-s) K)^T V,  z likewise
// The cost per token does not grow with N. f32 arithmetic throughout.
#include <algorithm>
#include <cmath>
#include <cstdlib>

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
    // Sequence parts (see linear_attention_cuda): mode 0 = whole sequence in one pass; 1 = each
    // part's own state contribution from zero (to ws); 2 = outputs of each part from the initial
    // state the scan left in ws.
    int mode, parts;
    int64_t part_len, BH;
    float *ws_state, *ws_z;  // [parts][B*H][d][dv], [parts][B*H][d]
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
    const int part = blockIdx.z;
    const int64_t n0 = part * p.part_len, n1 = min(p.N, n0 + p.part_len);
    float *ws_s = p.ws_state + ((int64_t)part * p.BH + blockIdx.x) * d * p.dv;
    float *ws_z = p.ws_z + ((int64_t)part * p.BH + blockIdx.x) * d;

    const float lambda = p.has_decay ? dload(p.decay, h * p.decay.s[0]) : 1.0f;
    if (tid <= C) pw[tid] = powf(lambda, (float)tid);
    for (int i = tid; i < d * E; i += T) {
        const int kk = i / E, e = i % E;
        float x = 0.0f;
        if (p.mode == 0 && p.has_s_in && e < ew)
            x = dload(p.s_in, b * p.s_in.s[0] + h * p.s_in.s[1] + kk * p.s_in.s[2] + (e0 + e) * p.s_in.s[3]);
        if (p.mode == 2 && e < ew) x = ws_s[kk * p.dv + e0 + e];
        Ss[kk * (E + 1) + e] = x;
    }
    for (int i = tid; i < d; i += T) {
        float x = 0.0f;
        if (p.mode == 0 && p.has_z_in) x = dload(p.z_in, b * p.z_in.s[0] + h * p.z_in.s[1] + i * p.z_in.s[2]);
        if (p.mode == 2) x = ws_z[i];
        zs[i] = x;
    }
    __syncthreads();

    const int64_t qb = b * p.q.s[0] + h * p.q.s[1], kb = b * p.k.s[0] + h * p.k.s[1];
    const int64_t vb = b * p.v.s[0] + h * p.v.s[1], ob = b * p.out.s[0] + h * p.out.s[1];

    for (int64_t c0 = n0; c0 < n1; c0 += C) {
        const int L = (int)min((int64_t)C, n1 - c0);
        // Load the chunk (zero rows past the end, so they add nothing).
        for (int i = tid; i < C * d; i += T) {
            const int t = i / d, kk = i % d;
            float qv = 0.0f, kv = 0.0f;
            if (t < L) {
                if (p.mode != 1) qv = feature(dload(p.q, qb + (c0 + t) * p.q.s[2] + kk * p.q.s[3]), p.feature_map);
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

        if (p.mode != 1) {  // block-uniform: the barriers inside are reached by every thread
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

    if (p.mode == 1) {  // this part's contribution, for the scan
        for (int i = tid; i < d * E; i += T) {
            const int kk = i / E, e = i % E;
            if (e < ew) ws_s[kk * p.dv + e0 + e] = Ss[kk * (E + 1) + e];
        }
        if (blockIdx.y == 0)
            for (int i = tid; i < d; i += T) ws_z[i] = zs[i];
        return;
    }
    if (p.mode == 2 && part != p.parts - 1) return;
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

// The initial state of every part: S_0 = state_in, S_(p+1) = lambda^len_p S_p + delta_p, written
// over delta_p in place (delta_p is read first). One thread per state (or z) element.
__global__ void scan_parts_kernel(linear_params p, int64_t state_elems, int64_t total) {
    const int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
    if (i >= total) return;
    const bool is_z = i >= state_elems;
    const int64_t j = is_z ? i - state_elems : i;
    const int64_t per_bh = is_z ? p.d : (int64_t)p.d * p.dv;
    const int64_t bh = j / per_bh, rest = j % per_bh, b = bh / p.H, h = bh % p.H;
    float *ws = is_z ? p.ws_z : p.ws_state;
    float x = 0.0f;
    if (is_z) {
        if (p.has_z_in) x = dload(p.z_in, b * p.z_in.s[0] + h * p.z_in.s[1] + rest * p.z_in.s[2]);
    } else if (p.has_s_in) {
        const int64_t kk = rest / p.dv, e = rest % p.dv;
        x = dload(p.s_in, b * p.s_in.s[0] + h * p.s_in.s[1] + kk * p.s_in.s[2] + e * p.s_in.s[3]);
    }
    const float lambda = p.has_decay ? dload(p.decay, h * p.decay.s[0]) : 1.0f;
    for (int part = 0; part < p.parts; ++part) {
        const int64_t at = (int64_t)part * p.BH * per_bh + j;
        const float delta = part + 1 < p.parts ? ws[at] : 0.0f;
        ws[at] = x;
        if (part + 1 < p.parts) {
            const int64_t len = min(p.part_len, p.N - part * p.part_len);
            x = fmaf(powf(lambda, (float)len), x, delta);
        }
    }
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
    const int64_t bh = a.B * a.H, dvt = (a.dv + E - 1) / E, chunks = (a.N + C - 1) / C;
    if (bh > 0x7fffffff || dvt > 65535) return fail(HEED_ERR_UNSUPPORTED, "q/v: too many heads or too large dv for CUDA");
    p.BH = bh;
    // Few (batch, head, dv slice) blocks leave most of the GPU idle while each walks its chunks in
    // order. Then the sequence is cut into parts: a cheap pass computes each part's own state
    // contribution (K and V only), a scan turns them into each part's initial state, and the
    // parts run at once. HEED_LINEAR_PARTS forces the count (1: one pass).
    int64_t parts = 1;
    if (const char *env = std::getenv("HEED_LINEAR_PARTS")) {
        parts = std::atoll(env);
    } else {
        int sms = 0;
        HEED_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
        parts = (2 * (int64_t)sms) / (bh * dvt);  // two blocks fit on an SM
    }
    parts = std::max<int64_t>(1, std::min(parts, std::min<int64_t>(chunks, 65535)));
    p.part_len = ((chunks + parts - 1) / parts) * C;
    parts = (a.N + p.part_len - 1) / p.part_len;
    p.parts = (int)parts;
    const size_t smem = smem_floats(p.d) * sizeof(float);
    HEED_CUDA_CHECK(cudaFuncSetAttribute(linear_chunk_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));

    if (parts == 1) {
        p.mode = 0;
        float *z_copy = nullptr;
        if (a.z_in && a.z_out && a.z_in->data == a.z_out->data) {
            const int64_t total = a.B * a.H * a.d;
            HEED_CUDA_CHECK(cudaMallocAsync((void **)&z_copy, (size_t)total * sizeof(float), 0));
            copy_z_kernel<<<(unsigned)((total + 255) / 256), 256>>>(p.z_in, z_copy, a.H, (int)a.d, total);
            HEED_CUDA_CHECK_LAUNCH("copy_z_kernel");
            p.z_in = dview{z_copy, HEED_F32, {a.H * a.d, a.d, 1, 0}};
        }
        linear_chunk_kernel<<<dim3((unsigned)bh, (unsigned)dvt, 1), T, smem>>>(p);
        HEED_CUDA_CHECK_LAUNCH("linear_chunk_kernel");
        if (z_copy) HEED_CUDA_CHECK(cudaFreeAsync(z_copy, 0));
        return ok();
    }
    const int64_t state_elems = bh * a.d * a.dv, z_elems = bh * a.d;
    float *ws = nullptr;
    HEED_CUDA_CHECK(cudaMallocAsync((void **)&ws, (size_t)(parts * (state_elems + z_elems)) * sizeof(float), 0));
    p.ws_state = ws;
    p.ws_z = ws + parts * state_elems;
    p.mode = 1;
    linear_chunk_kernel<<<dim3((unsigned)bh, (unsigned)dvt, (unsigned)(parts - 1)), T, smem>>>(p);
    cudaError_t err = cudaGetLastError();
    if (err == cudaSuccess) {
        const int64_t total = state_elems + z_elems;
        scan_parts_kernel<<<(unsigned)((total + 255) / 256), 256>>>(p, state_elems, total);
        err = cudaGetLastError();
    }
    if (err == cudaSuccess) {
        p.mode = 2;
        linear_chunk_kernel<<<dim3((unsigned)bh, (unsigned)dvt, (unsigned)parts), T, smem>>>(p);
        err = cudaGetLastError();
    }
    cudaFreeAsync(ws, 0);
    if (err != cudaSuccess) return cuda_status(err, "linear attention kernels");
    return ok();
}

}  // namespace heed::linear_kv
