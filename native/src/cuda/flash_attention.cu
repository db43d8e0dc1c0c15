// flash_attention.cu - flash attention forward on tensor cores (and, given a block mask, the
// block-sparse forward: the same loop skipping the key tiles the mask drops).
//
// One CTA takes 64 or 128 query rows of one (batch, head) (see launch for the variants); each
// warp owns one or two m-tiles of 16 rows (with one, Q stays in registers as mma A fragments;
// with two, it is re-read from shared memory). K/V tiles of 64 keys are double-buffered in shared
// memory with cp.async, so the next tile loads while this one is multiplied. S = Q K^T and O += P V
// use mma.sync m16n8k16 (fp32 accumulators); the online softmax runs in registers in base 2;
// P goes from the S accumulators straight into A fragments without touching shared memory.
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "cuda/attention_cuda.hpp"
#include "cuda/cuda_check.hpp"
#include "cuda/tensor_core.cuh"

namespace heed::cuda {
namespace {

constexpr int kBN = 64;  // keys per tile

struct FlashParams {
    const void *q, *k, *v;
    void *o;
    float *lse;              // may be null
    const uint8_t *mask;     // null: flash attention
    int64_t qs[3], ks[3], vs[3], os[3];  // strides of dims b, h, n (elements; innermost is 1)
    int64_t ls[3];           // lse strides b, h, n
    int64_t ms[4];           // mask strides
    int H, Hkv, Nq, Nk, block;
    float scale, scale_log2; // scale, and scale * log2(e)
    bool causal;
};

template <int D, int BM>
constexpr int smem_bytes() { return (BM + 4 * kBN) * (D + 8) * 2; }

// Copies rows [row0, row0+ROWS) x D of one (b, head) slice into shared memory (row stride D+8),
// zero-filling rows at or past n.
template <int D, int ROWS, int THREADS>
__device__ __forceinline__ void load_tile(uint16_t *dst, const uint16_t *src, int64_t row_stride, int row0, int n) {
    constexpr int kChunks = ROWS * D / 8;  // 16-byte pieces
    for (int c = threadIdx.x; c < kChunks; c += THREADS) {
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

// WARPS warps, each owning MT m-tiles of 16 rows: m-tile mt of warp w is rows
// m0 + mt*WARPS*16 + w*16 .. +15, so BM = WARPS*16*MT rows per CTA. With MT = 2 every K/V fragment
// a warp loads from shared memory feeds two mma instead of one (Q fragments are then re-read
// from shared memory per tile instead of living in registers, to stay within 255 registers).
template <typename T, int D, int WARPS, int MT>
__global__ void __launch_bounds__(WARPS * 32) flash_forward_kernel(const FlashParams p) {
    constexpr int kThreads = WARPS * 32, BM = WARPS * 16 * MT, LD = D + 8;  // padded rows: no bank conflicts
    constexpr bool kQInRegisters = MT == 1;
    extern __shared__ __align__(16) uint16_t smem[];
    uint16_t *sQ = smem;
    uint16_t *sK = sQ + BM * LD;  // two buffers
    uint16_t *sV = sK + 2 * kBN * LD;

    const int m0 = blockIdx.x * BM, h = blockIdx.y, b = blockIdx.z;
    const int g = h / (p.H / p.Hkv);
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int gid = lane >> 2, tig = lane & 3, mi = lane >> 3, rr = lane & 7;

    const uint16_t *q = static_cast<const uint16_t *>(p.q) + b * p.qs[0] + h * p.qs[1];
    const uint16_t *k = static_cast<const uint16_t *>(p.k) + b * p.ks[0] + g * p.ks[1];
    const uint16_t *v = static_cast<const uint16_t *>(p.v) + b * p.vs[0] + g * p.vs[1];
    const uint8_t *mask_row = p.mask ? p.mask + b * p.ms[0] + h * p.ms[1] + (int64_t)(m0 / p.block) * p.ms[2] : nullptr;

    // Top-left causal: this CTA's last row m0+BM-1 sees keys up to m0+BM-1.
    const int key_end = p.causal ? min(p.Nk, m0 + BM) : p.Nk;
    const int tiles = (key_end + kBN - 1) / kBN;

    load_tile<D, BM, kThreads>(sQ, q, p.qs[2], m0, p.Nq);
    int t = next_tile(p, mask_row, 0, tiles);
    if (t < tiles) {
        load_tile<D, kBN, kThreads>(sK, k, p.ks[2], t * kBN, p.Nk);
        load_tile<D, kBN, kThreads>(sV, v, p.vs[2], t * kBN, p.Nk);
    }
    cp_async_commit();
    cp_async_wait_all();
    __syncthreads();

    // The first row of each of this warp's m-tiles, and the shared-memory row of its Q fragments.
    int mrow[MT];
#pragma unroll
    for (int mt = 0; mt < MT; ++mt) mrow[mt] = mt * WARPS * 16 + warp * 16;

    uint32_t qf[kQInRegisters ? D / 16 : 1][4];  // MT == 1: Q fragments for all of d, kept
    if constexpr (kQInRegisters) {
#pragma unroll
        for (int kk = 0; kk < D / 16; ++kk) ldmatrix_x4(qf[kk], sQ + (mrow[0] + rr + (mi & 1) * 8) * LD + kk * 16 + (mi >> 1) * 8);
    }

    float acc[MT][D / 8][4];
    float row_max[MT][2], row_sum[MT][2];  // row_sum: this thread's part
#pragma unroll
    for (int mt = 0; mt < MT; ++mt) {
#pragma unroll
        for (int i = 0; i < D / 8; ++i) acc[mt][i][0] = acc[mt][i][1] = acc[mt][i][2] = acc[mt][i][3] = 0.0f;
        row_max[mt][0] = row_max[mt][1] = -INFINITY;
        row_sum[mt][0] = row_sum[mt][1] = 0.0f;
    }

    int buf = 0;
    while (t < tiles) {
        const int tn = next_tile(p, mask_row, t + 1, tiles);
        if (tn < tiles) {  // prefetch the next kept tile into the other buffer
            load_tile<D, kBN, kThreads>(sK + (buf ^ 1) * kBN * LD, k, p.ks[2], tn * kBN, p.Nk);
            load_tile<D, kBN, kThreads>(sV + (buf ^ 1) * kBN * LD, v, p.vs[2], tn * kBN, p.Nk);
        }
        cp_async_commit();
        const uint16_t *cK = sK + buf * kBN * LD, *cV = sV + buf * kBN * LD;

        // S = Q K^T: s[mt][nt] is 16 rows x keys 8nt..8nt+7.
        float s[MT][kBN / 8][4];
#pragma unroll
        for (int mt = 0; mt < MT; ++mt)
#pragma unroll
            for (int nt = 0; nt < kBN / 8; ++nt) s[mt][nt][0] = s[mt][nt][1] = s[mt][nt][2] = s[mt][nt][3] = 0.0f;
#pragma unroll
        for (int kk = 0; kk < D / 16; kk += 2) {
            uint32_t qa[MT][2][4];
            if constexpr (kQInRegisters) {
#pragma unroll
                for (int x = 0; x < 4; ++x) {
                    qa[0][0][x] = qf[kk][x];
                    qa[0][1][x] = qf[kk + 1][x];
                }
            } else {
#pragma unroll
                for (int mt = 0; mt < MT; ++mt)
#pragma unroll
                    for (int half = 0; half < 2; ++half)
                        ldmatrix_x4(qa[mt][half], sQ + (mrow[mt] + rr + (mi & 1) * 8) * LD + (kk + half) * 16 + (mi >> 1) * 8);
            }
#pragma unroll
            for (int nt = 0; nt < kBN / 8; ++nt) {
                uint32_t bk[4];  // b0,b1 for k-slice kk, then for kk+1
                ldmatrix_x4(bk, cK + (nt * 8 + rr) * LD + kk * 16 + mi * 8);
#pragma unroll
                for (int mt = 0; mt < MT; ++mt) {
                    mma16816<T>(s[mt][nt], qa[mt][0], bk[0], bk[1]);
                    mma16816<T>(s[mt][nt], qa[mt][1], bk[2], bk[3]);
                }
            }
        }

        const int j0 = t * kBN;
#pragma unroll
        for (int mt = 0; mt < MT; ++mt) {
            // Mask keys past the end and, on the diagonal, keys after the row. Scores stay unscaled
            // (scale > 0 keeps the max); p = 2^(s*c - max*c) is one FFMA and one MUFU.
            const int row_a = m0 + mrow[mt] + gid, row_b = row_a + 8;
            const bool edge = j0 + kBN > p.Nk || (p.causal && j0 + kBN > m0 + mrow[mt]);
            if (edge) {
#pragma unroll
                for (int nt = 0; nt < kBN / 8; ++nt)
#pragma unroll
                    for (int e = 0; e < 4; ++e) {
                        const int j = j0 + nt * 8 + 2 * tig + (e & 1), i = e < 2 ? row_a : row_b;
                        if (j >= p.Nk || (p.causal && j > i)) s[mt][nt][e] = -INFINITY;
                    }
            }
            // Online softmax per row (each row's 64 scores live in one quad of 4 lanes).
#pragma unroll
            for (int r = 0; r < 2; ++r) {
                float mx = -INFINITY;
#pragma unroll
                for (int nt = 0; nt < kBN / 8; ++nt) mx = fmaxf(mx, fmaxf(s[mt][nt][2 * r], s[mt][nt][2 * r + 1]));
                mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
                mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
                const float m_new = fmaxf(row_max[mt][r], mx);
                // base in base-2 units; a row that saw nothing yet stays at 0 (its p are all 0).
                const float base = m_new == -INFINITY ? 0.0f : m_new * p.scale_log2;
                const float corr = fast_exp2(row_max[mt][r] * p.scale_log2 - base);
                row_max[mt][r] = m_new;
                float sum = 0.0f;
#pragma unroll
                for (int nt = 0; nt < kBN / 8; ++nt) {
                    s[mt][nt][2 * r] = fast_exp2(fmaf(s[mt][nt][2 * r], p.scale_log2, -base));
                    s[mt][nt][2 * r + 1] = fast_exp2(fmaf(s[mt][nt][2 * r + 1], p.scale_log2, -base));
                    sum += s[mt][nt][2 * r] + s[mt][nt][2 * r + 1];
                }
                row_sum[mt][r] = row_sum[mt][r] * corr + sum;
#pragma unroll
                for (int dt = 0; dt < D / 8; ++dt) {
                    acc[mt][dt][2 * r] *= corr;
                    acc[mt][dt][2 * r + 1] *= corr;
                }
            }
        }

        // O += P V: P's accumulators become A fragments (two n8 tiles make one k16 slice).
#pragma unroll
        for (int kk = 0; kk < kBN / 16; ++kk) {
            uint32_t a[MT][4];
#pragma unroll
            for (int mt = 0; mt < MT; ++mt) {
                a[mt][0] = pack2<T>(s[mt][2 * kk][0], s[mt][2 * kk][1]);
                a[mt][1] = pack2<T>(s[mt][2 * kk][2], s[mt][2 * kk][3]);
                a[mt][2] = pack2<T>(s[mt][2 * kk + 1][0], s[mt][2 * kk + 1][1]);
                a[mt][3] = pack2<T>(s[mt][2 * kk + 1][2], s[mt][2 * kk + 1][3]);
            }
#pragma unroll
            for (int dt = 0; dt < D / 8; dt += 2) {
                uint32_t bv[4];  // b0,b1 for d-tile dt, then for dt+1
                ldmatrix_x4_trans(bv, cV + (kk * 16 + rr + (mi & 1) * 8) * LD + dt * 8 + (mi >> 1) * 8);
#pragma unroll
                for (int mt = 0; mt < MT; ++mt) {
                    mma16816<T>(acc[mt][dt], a[mt], bv[0], bv[1]);
                    mma16816<T>(acc[mt][dt + 1], a[mt], bv[2], bv[3]);
                }
            }
        }

        cp_async_wait_all();  // the next tile has landed ...
        __syncthreads();      // ... for every thread, and nobody reads this buffer any more
        buf ^= 1;
        t = tn;
    }

    // Finish: full row sums across the quad, O = acc / l, lse = ln(sum exp).
    T *o = static_cast<T *>(p.o) + b * p.os[0] + h * p.os[1];
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
#pragma unroll
        for (int r = 0; r < 2; ++r) {
            float l = row_sum[mt][r];
            l += __shfl_xor_sync(0xffffffffu, l, 1);
            l += __shfl_xor_sync(0xffffffffu, l, 2);
            const int i = m0 + mrow[mt] + gid + 8 * r;
            if (i >= p.Nq) continue;
            const float inv = l > 0.0f ? 1.0f / l : 0.0f;
            T *orow = o + (int64_t)i * p.os[2];
#pragma unroll
            for (int dt = 0; dt < D / 8; ++dt)
                *reinterpret_cast<uint32_t *>(orow + dt * 8 + 2 * tig) =
                    pack2<T>(acc[mt][dt][2 * r] * inv, acc[mt][dt][2 * r + 1] * inv);
            if (p.lse && tig == 0)
                p.lse[b * p.ls[0] + h * p.ls[1] + (int64_t)i * p.ls[2]] =
                    l > 0.0f ? row_max[mt][r] * p.scale + logf(l) : -INFINITY;
        }
}

template <typename T, int D, int WARPS, int MT>
heed_status launch_variant(const FlashParams &p, int B, int H) {
    constexpr int BM = WARPS * 16 * MT;
    auto kernel = flash_forward_kernel<T, D, WARPS, MT>;
    HEED_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem_bytes<D, BM>()));
    dim3 grid((p.Nq + BM - 1) / BM, H, B);
    kernel<<<grid, WARPS * 32, smem_bytes<D, BM>()>>>(p);
    HEED_CUDA_CHECK_LAUNCH("flash attention kernel launch");
    return HEED_OK;
}

// Three shapes of CTA: "64" (4 warps x 16 rows), "128w" (8 warps x 16 rows), "128" (4 warps x 32
// rows). 128 rows halve the K/V tile loads per row; a 64-block mask needs 64 (a CTA's rows must
// share one mask row). HEED_FLASH_VARIANT=64|128w|128 picks one, for measurements.
enum class variant { rows64, rows128_8warps, rows128_2tiles };
constexpr variant kDefaultVariant = variant::rows128_2tiles;  // fastest on H100 (NOTES-attention.md)

variant chosen_variant() {
    static const variant v = [] {
        const char *e = std::getenv("HEED_FLASH_VARIANT");
        if (e == nullptr) return kDefaultVariant;
        if (std::strcmp(e, "64") == 0) return variant::rows64;
        if (std::strcmp(e, "128w") == 0) return variant::rows128_8warps;
        if (std::strcmp(e, "128") == 0) return variant::rows128_2tiles;
        return kDefaultVariant;
    }();
    return v;
}

template <typename T, int D>
heed_status launch(const FlashParams &p, int B, int H) {
    const variant v = p.mask && p.block == 64 ? variant::rows64 : chosen_variant();
    switch (v) {
        case variant::rows64: return launch_variant<T, D, 4, 1>(p, B, H);
        case variant::rows128_8warps: return launch_variant<T, D, 8, 1>(p, B, H);
        default: return launch_variant<T, D, 4, 2>(p, B, H);
    }
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
    p.scale = a.scale;
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
