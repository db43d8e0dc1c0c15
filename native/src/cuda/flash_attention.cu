// flash_attention.cu - flash attention forward on tensor cores (and, given a block mask, the
// block-sparse forward: the same loop skipping the key tiles the mask drops).
//
// One CTA of 4 warps takes 64 query rows of one (batch, head); each warp owns 16 rows. Q stays
// in registers as mma A fragments; K/V tiles of 64 keys are double-buffered in shared memory
// with cp.async, so the next tile loads while this one is multiplied. S = Q K^T and O += P V
// use mma.sync m16n8k16 (fp32 accumulators); the online softmax runs in registers in base 2;
// P goes from the S accumulators straight into A fragments without touching shared memory.
#include <cmath>

#include "cuda/attention_cuda.hpp"
#include "cuda/cuda_check.hpp"
#include "cuda/mma_a.cuh"

namespace heed::cuda {
namespace {

constexpr int kBM = 64;   // query rows per CTA
constexpr int kBN = 64;   // keys per tile
constexpr int kWarps = 4;
constexpr int kThreads = kWarps * 32;

struct FlashParams {
    const void *q, *k, *v;
    void *o;
    float *lse;              // may be null
    const uint8_t *mask;     // null: flash attention
    int64_t qs[3], ks[3], vs[3], os[3];  // strides of dims b, h, n (elements; innermost is 1)
    int64_t ls[3];           // lse strides b, h, n
    int64_t ms[4];           // mask strides
    int H, Hkv, Nq, Nk, block;
    float scale_log2;        // scale * log2(e)
    bool causal;
};

template <int D>
constexpr int smem_bytes() { return (kBM + 4 * kBN) * (D + 8) * 2; }

// Copies rows [row0, row0+64) x D of one (b, head) slice into shared memory (row stride D+8),
// zero-filling rows at or past n.
template <int D>
__device__ __forceinline__ void load_tile(uint16_t *dst, const uint16_t *src, int64_t row_stride, int row0, int n) {
    constexpr int kChunks = kBN * D / 8;  // 16-byte pieces
    for (int c = threadIdx.x; c < kChunks; c += kThreads) {
        const int r = c / (D / 8), col = (c % (D / 8)) * 8;
        const bool in = row0 + r < n;
        const uint16_t *g = in ? src + (int64_t)(row0 + r) * row_stride + col : src;
        cp_async16(dst + r * (D + 8) + col, g, in ? 16 : 0);
    }
}

// The first key tile at or after t that the mask keeps (every tile without a mask).
__device__ __forceinline__ int next_tile(const FlashParams &p, const uint8_t *mask_row, int t, int tiles) {
    if (!p.mask) return t;
    while (t < tiles && mask_row[(int64_t)(t * kBN / p.block) * p.ms[3]] == 0) ++t;
    return t;
}

template <typename T, int D>
__global__ void __launch_bounds__(kThreads) flash_forward_kernel(const FlashParams p) {
    extern __shared__ __align__(16) uint16_t smem[];
    constexpr int LD = D + 8;  // padded row: ldmatrix rows fall in distinct banks
    uint16_t *sQ = smem;
    uint16_t *sK = sQ + kBM * LD;  // two buffers
    uint16_t *sV = sK + 2 * kBN * LD;

    const int m0 = blockIdx.x * kBM, h = blockIdx.y, b = blockIdx.z;
    const int g = h / (p.H / p.Hkv);
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int gid = lane >> 2, tig = lane & 3;

    const uint16_t *q = static_cast<const uint16_t *>(p.q) + b * p.qs[0] + h * p.qs[1];
    const uint16_t *k = static_cast<const uint16_t *>(p.k) + b * p.ks[0] + g * p.ks[1];
    const uint16_t *v = static_cast<const uint16_t *>(p.v) + b * p.vs[0] + g * p.vs[1];
    const uint8_t *mask_row = p.mask ? p.mask + b * p.ms[0] + h * p.ms[1] + (int64_t)(m0 / p.block) * p.ms[2] : nullptr;

    // Top-left causal: this CTA's last row m0+63 sees keys up to m0+63.
    const int key_end = p.causal ? min(p.Nk, m0 + kBM) : p.Nk;
    const int tiles = (key_end + kBN - 1) / kBN;

    load_tile<D>(sQ, q, p.qs[2], m0, p.Nq);
    int t = next_tile(p, mask_row, 0, tiles);
    if (t < tiles) {
        load_tile<D>(sK, k, p.ks[2], t * kBN, p.Nk);
        load_tile<D>(sV, v, p.vs[2], t * kBN, p.Nk);
    }
    cp_async_commit();
    cp_async_wait_all();
    __syncthreads();

    // Q fragments for this warp's 16 rows: qf[kk] covers columns 16kk..16kk+15.
    uint32_t qf[D / 16][4];
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
        const int mi = lane >> 3, rr = lane & 7;
        ldmatrix_x4(qf[kk], sQ + (warp * 16 + rr + (mi & 1) * 8) * LD + kk * 16 + (mi >> 1) * 8);
    }

    float acc[D / 8][4];
#pragma unroll
    for (int i = 0; i < D / 8; ++i) acc[i][0] = acc[i][1] = acc[i][2] = acc[i][3] = 0.0f;
    float row_max[2] = {-INFINITY, -INFINITY}, row_sum[2] = {0.0f, 0.0f};  // row_sum: this thread's part
    const int row_a = m0 + warp * 16 + gid, row_b = row_a + 8;

    int buf = 0;
    while (t < tiles) {
        const int tn = next_tile(p, mask_row, t + 1, tiles);
        if (tn < tiles) {  // prefetch the next kept tile into the other buffer
            load_tile<D>(sK + (buf ^ 1) * kBN * LD, k, p.ks[2], tn * kBN, p.Nk);
            load_tile<D>(sV + (buf ^ 1) * kBN * LD, v, p.vs[2], tn * kBN, p.Nk);
        }
        cp_async_commit();
        const uint16_t *cK = sK + buf * kBN * LD, *cV = sV + buf * kBN * LD;

        // S = Q K^T for 16 rows x 64 keys: s[nt] is keys 8nt..8nt+7.
        float s[kBN / 8][4];
#pragma unroll
        for (int nt = 0; nt < kBN / 8; ++nt) s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.0f;
#pragma unroll
        for (int nt = 0; nt < kBN / 8; ++nt) {
#pragma unroll
            for (int kk = 0; kk < D / 16; kk += 2) {
                uint32_t bk[4];  // b0,b1 for k-slice kk, then for kk+1
                ldmatrix_x4(bk, cK + (nt * 8 + (lane & 7)) * LD + kk * 16 + (lane >> 3) * 8);
                mma16816<T>(s[nt], qf[kk], bk[0], bk[1]);
                mma16816<T>(s[nt], qf[kk + 1], bk[2], bk[3]);
            }
        }

        // Scale to base 2; mask keys past the end and, on the diagonal, keys after the row.
        const int j0 = t * kBN;
        const bool edge = j0 + kBN > p.Nk || (p.causal && j0 + kBN > m0 + warp * 16);
#pragma unroll
        for (int nt = 0; nt < kBN / 8; ++nt)
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                float x = s[nt][e] * p.scale_log2;
                if (edge) {
                    const int j = j0 + nt * 8 + 2 * tig + (e & 1), i = e < 2 ? row_a : row_b;
                    if (j >= p.Nk || (p.causal && j > i)) x = -INFINITY;
                }
                s[nt][e] = x;
            }

        // Online softmax per row (each row's 64 scores live in one quad of 4 lanes).
#pragma unroll
        for (int r = 0; r < 2; ++r) {
            float mx = -INFINITY;
#pragma unroll
            for (int nt = 0; nt < kBN / 8; ++nt) mx = fmaxf(mx, fmaxf(s[nt][2 * r], s[nt][2 * r + 1]));
            mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
            mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
            const float m_new = fmaxf(row_max[r], mx);
            const float base = m_new == -INFINITY ? 0.0f : m_new;  // a row that saw nothing yet stays at 0
            const float corr = exp2f(row_max[r] - base);
            row_max[r] = m_new;
            float sum = 0.0f;
#pragma unroll
            for (int nt = 0; nt < kBN / 8; ++nt) {
                s[nt][2 * r] = exp2f(s[nt][2 * r] - base);
                s[nt][2 * r + 1] = exp2f(s[nt][2 * r + 1] - base);
                sum += s[nt][2 * r] + s[nt][2 * r + 1];
            }
            row_sum[r] = row_sum[r] * corr + sum;
#pragma unroll
            for (int dt = 0; dt < D / 8; ++dt) {
                acc[dt][2 * r] *= corr;
                acc[dt][2 * r + 1] *= corr;
            }
        }

        // O += P V: P's accumulators become A fragments (two n8 tiles make one k16 slice).
#pragma unroll
        for (int kk = 0; kk < kBN / 16; ++kk) {
            uint32_t a[4];
            a[0] = pack2<T>(s[2 * kk][0], s[2 * kk][1]);
            a[1] = pack2<T>(s[2 * kk][2], s[2 * kk][3]);
            a[2] = pack2<T>(s[2 * kk + 1][0], s[2 * kk + 1][1]);
            a[3] = pack2<T>(s[2 * kk + 1][2], s[2 * kk + 1][3]);
#pragma unroll
            for (int dt = 0; dt < D / 8; dt += 2) {
                uint32_t bv[4];  // b0,b1 for d-tile dt, then for dt+1
                const int mi = lane >> 3, rr = lane & 7;
                ldmatrix_x4_trans(bv, cV + (kk * 16 + rr + (mi & 1) * 8) * LD + dt * 8 + (mi >> 1) * 8);
                mma16816<T>(acc[dt], a, bv[0], bv[1]);
                mma16816<T>(acc[dt + 1], a, bv[2], bv[3]);
            }
        }

        cp_async_wait_all();  // the next tile has landed ...
        __syncthreads();      // ... for every thread, and nobody reads this buffer any more
        buf ^= 1;
        t = tn;
    }

    // Finish: full row sums across the quad, O = acc / l, lse = ln(sum exp).
#pragma unroll
    for (int r = 0; r < 2; ++r) {
        row_sum[r] += __shfl_xor_sync(0xffffffffu, row_sum[r], 1);
        row_sum[r] += __shfl_xor_sync(0xffffffffu, row_sum[r], 2);
    }
    T *o = static_cast<T *>(p.o) + b * p.os[0] + h * p.os[1];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
        const int i = r == 0 ? row_a : row_b;
        if (i >= p.Nq) continue;
        const float inv = row_sum[r] > 0.0f ? 1.0f / row_sum[r] : 0.0f;
        T *orow = o + (int64_t)i * p.os[2];
#pragma unroll
        for (int dt = 0; dt < D / 8; ++dt)
            *reinterpret_cast<uint32_t *>(orow + dt * 8 + 2 * tig) = pack2<T>(acc[dt][2 * r] * inv, acc[dt][2 * r + 1] * inv);
        if (p.lse && tig == 0)
            p.lse[b * p.ls[0] + h * p.ls[1] + (int64_t)i * p.ls[2]] =
                row_sum[r] > 0.0f ? row_max[r] * 0.69314718056f + logf(row_sum[r]) : -INFINITY;
    }
}

template <typename T, int D>
heed_status launch(const FlashParams &p, int B, int H) {
    auto kernel = flash_forward_kernel<T, D>;
    HEED_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem_bytes<D>()));
    dim3 grid((p.Nq + kBM - 1) / kBM, H, B);
    kernel<<<grid, kThreads, smem_bytes<D>()>>>(p);
    HEED_CUDA_CHECK_LAUNCH("flash attention kernel launch");
    return HEED_OK;
}

// The kernel reads 16-byte pieces of rows: innermost stride 1, rows 16-byte aligned.
heed_status check_layout(const tview &t, const char *name) {
    if (t.t->shape[3] > 1 && t.s[3] != 1)
        return fail(HEED_ERR_UNSUPPORTED, "%s: the CUDA attention kernels need a contiguous last dimension (stride 1)", name);
    if (reinterpret_cast<uintptr_t>(t.t->data) % 16 != 0 || t.s[0] % 8 != 0 || t.s[1] % 8 != 0 || t.s[2] % 8 != 0)
        return fail(HEED_ERR_UNSUPPORTED, "%s: the CUDA attention kernels need 16-byte aligned rows (data and outer strides multiples of 8 elements)", name);
    return HEED_OK;
}

}  // namespace

heed_status attention_forward(const attention_args &a, int device) {
    if (a.q.t->dtype != HEED_F16 && a.q.t->dtype != HEED_BF16)
        return fail(HEED_ERR_UNSUPPORTED, "q: CUDA flash/block-sparse attention takes f16 or bf16, not %s", dtype_name(a.q.t->dtype));
    if (a.d != 64 && a.d != 128)
        return fail(HEED_ERR_UNSUPPORTED, "q: CUDA flash/block-sparse attention supports head size 64 or 128, not %lld", (long long)a.d);
    for (auto [t, n] : {std::pair{&a.q, "q"}, {&a.k, "k"}, {&a.v, "v"}, {&a.o, "o"}}) {
        heed_status s = check_layout(*t, n);
        if (s != HEED_OK) return s;
    }
    if (a.Nq > INT32_MAX / 2 || a.Nk > INT32_MAX / 2 || a.H > 65535 || a.B > 65535)
        return fail(HEED_ERR_UNSUPPORTED, "q: sizes beyond the CUDA grid (B and H up to 65535, N below 2^30)");
    FlashParams p{};
    p.q = a.q.t->data;
    p.k = a.k.t->data;
    p.v = a.v.t->data;
    p.o = a.o.t->data;
    p.lse = a.lse.present() ? static_cast<float *>(a.lse.t->data) : nullptr;
    p.mask = a.mask.present() ? static_cast<const uint8_t *>(a.mask.t->data) : nullptr;
    for (int i = 0; i < 3; ++i) {
        p.qs[i] = a.q.s[i];
        p.ks[i] = a.k.s[i];
        p.vs[i] = a.v.s[i];
        p.os[i] = a.o.s[i];
        p.ls[i] = a.lse.present() ? a.lse.s[i] : 0;
    }
    for (int i = 0; i < 4; ++i) p.ms[i] = a.mask.present() ? a.mask.s[i] : 0;
    p.H = (int)a.H;
    p.Hkv = (int)a.Hkv;
    p.Nq = (int)a.Nq;
    p.Nk = (int)a.Nk;
    p.block = a.mask.present() ? (int)a.block : kBN;
    p.scale_log2 = a.scale * 1.4426950408889634f;
    p.causal = a.causal;

    int previous = 0;
    HEED_CUDA_CHECK(cudaGetDevice(&previous));
    HEED_CUDA_CHECK(cudaSetDevice(device));
    heed_status s;
    const bool half = a.q.t->dtype == HEED_F16;
    if (a.d == 64)
        s = half ? launch<__half, 64>(p, (int)a.B, (int)a.H) : launch<__nv_bfloat16, 64>(p, (int)a.B, (int)a.H);
    else
        s = half ? launch<__half, 128>(p, (int)a.B, (int)a.H) : launch<__nv_bfloat16, 128>(p, (int)a.B, (int)a.H);
    cudaSetDevice(previous);
    return s;
}

}  // namespace heed::cuda
