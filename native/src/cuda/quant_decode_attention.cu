// quant_decode_attention.cu - decode attention over the quantized KV cache on CUDA
// (flash-decoding on tensor cores).
//
// Grid: (split of the sequence, kv head x tile of 16 query rows, batch item). The query rows
// that share a kv head (GQA group x nq) are the M rows of mma.sync m16n8k16. Each of the 4
// warps of a block walks its own contiguous part of the split in tiles of 16 tokens, staged
// through a per-warp ring of shared-memory buffers filled with cp.async (the codes, the K
// scales of the tile's token group, the V scales of its tokens, the salient slots).
//   S = Q' K^T: the codes become exact fp16 integers in registers (no dequantization): the K
//       scale is folded into the query (Q' = q * scale_k per channel, in fp16) and the K zero
//       becomes one bias per row.
//   P V: V is dequantized to fp16 in registers (as an fp16 cache would hold it), P is rounded to
//       fp16; products accumulate in f32.
// A dot product does not care in which order it sums channels, so each lane reads whole 16-,
// 8- or 4-byte runs of codes and the query fragments follow the order the codes unpack in.
// Salient tokens (fp16 rows) take a slow path: their scores are f32 dot products and their V
// rows are read as they are. With one split the block writes the output; otherwise it writes
// (max, sum, unnormalized output) per row and a combine kernel merges the splits.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "cuda/linear_kv_cuda.hpp"
#include "cuda/tensor_core.cuh"

namespace heed::linear_kv {
namespace {

using heed::cuda::cp_async16;
using heed::cuda::cp_async_commit;

constexpr int WARPS = 4;
constexpr int NT = 32 * WARPS;
constexpr int TOK = 16;  // tokens per warp tile
constexpr float kLog2e = 1.4426950408889634f;

struct decode_params {
    dview q, out;
    const uint8_t *kcodes, *vcodes;
    const __half *kscale, *kzero, *vscale, *vzero, *sk, *sv;
    const int32_t *slot;
    float *ws_o, *ws_ml;  // split partials: [row][split][D], [row][split][2]
    int64_t H, Hkv, N, S, KG, nq, chunk;
    int64_t vscale_bytes;  // of v_scale (and v_zero): B * Hkv * N * VG halves
    int group, group_log2, qgroup, rows, splits, causal;  // group: 32, 64 or 128
    float qscale;  // scale * log2(e)
};

// Sizes of one warp's stage (one 16-token tile) in shared memory.
template <int BITS, int D>
struct stage_layout {
    static constexpr int RB = D * BITS / 8;    // code bytes per token row
    static constexpr int KSTRIDE = RB;         // K rows: lanes read 16-byte runs of two rows at once
    static constexpr int VSTRIDE = RB + 16;    // V rows padded: the four rows a lane reads fall in other banks
    static constexpr int VG_MAX = D / 32;      // V channel groups per token (group >= 32)
    static constexpr int K_OFF = 0;
    static constexpr int V_OFF = K_OFF + TOK * KSTRIDE;
    static constexpr int KSC_OFF = V_OFF + TOK * VSTRIDE;  // [D] halves: K scale of the tile's group
    static constexpr int KZE_OFF = KSC_OFF + D * 2;
    // [TOK][VG] halves, copied as the 16-byte-aligned window around them (a row of V scales
    // starts wherever N * VG puts it), so each holds 16 bytes more.
    static constexpr int VSC_OFF = KZE_OFF + D * 2;
    static constexpr int VZE_OFF = VSC_OFF + TOK * VG_MAX * 2 + 16;
    static constexpr int SLOT_OFF = VZE_OFF + TOK * VG_MAX * 2 + 16;  // [TOK] int32
    static constexpr int BYTES = SLOT_OFF + TOK * 4;
    static constexpr int STAGES = BITS == 8 ? 3 : 4;
    static_assert(RB % 16 == 0 && BYTES % 16 == 0, "stage buffers must stay 16-byte aligned");
};

template <int BITS, int D, int RT>
size_t smem_bytes() {
    using L = stage_layout<BITS, D>;
    const size_t stages = (size_t)WARPS * L::STAGES * L::BYTES;
    const size_t merge = (size_t)WARPS * RT * (D + 2) * sizeof(float);
    return (size_t)RT * D * sizeof(float) + std::max(stages, merge);
}

__device__ __forceinline__ void cp_async4(void *dst, const void *src, int bytes) {
    asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(heed::cuda::smem_u32(dst)), "l"(src), "r"(bytes));
}
template <int N>
__device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory"); }

__device__ __forceinline__ uint32_t as_u32(__half2 h) { return *reinterpret_cast<uint32_t *>(&h); }
__device__ __forceinline__ __half2 as_h2(uint32_t u) { return *reinterpret_cast<__half2 *>(&u); }

// Pair k of a 32-bit word of codes (low bits first): codes k and k + 16/BITS, as exact fp16
// integers. OR-ing 0x6400 (1024.0) above a small integer gives 1024 + code; subtracting 1024 is exact.
template <int BITS>
__device__ __forceinline__ __half2 code_pair(uint32_t word, int k) {
    constexpr uint32_t mask = ((1u << BITS) - 1u) * 0x00010001u;
    const uint32_t h = ((word >> (BITS * k)) & mask) | 0x64006400u;
    return __hsub2(as_h2(h), as_h2(0x64006400u));
}

// Channel (within a lane's run of D/4 K channels) of the low code of pair P: the runs unpack
// word by word, each word into 16/BITS pairs (k, k + 16/BITS).
template <int BITS>
__device__ __forceinline__ int k_pair_channel(int P) {
    return (P / (16 / BITS)) * (32 / BITS) + P % (16 / BITS);
}

template <int BITS, int D, int RT>
__global__ void __launch_bounds__(NT, RT == 8 ? 3 : 2) decode_kernel(decode_params p) {
    using L = stage_layout<BITS, D>;
    constexpr int KSTEPS = D / 16;            // k-steps of S = Q' K^T
    constexpr int NTILES = D / 8;             // n-tiles of O = P V
    constexpr int KRUN = D * BITS / 32;       // bytes of K codes a lane reads per token (D/4 channels)
    constexpr int KWORDS = KRUN / 4;
    constexpr int VRUN = D * BITS / 64;       // bytes of V codes a lane reads per token (D/8 channels)
    constexpr int VUNITS = VRUN / 2;          // 16-bit units of such a run
    constexpr int VWORDS = VRUN >= 4 ? VRUN / 4 : 1;
    constexpr bool TALL = RT == 16;           // rows 8..15 of the tile hold query rows too
    extern __shared__ __align__(16) unsigned char smem[];
    float *q_s = reinterpret_cast<float *>(smem);  // [RT][D], scaled by qscale
    unsigned char *stages = smem + RT * D * sizeof(float);

    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int g = lane >> 2, j = lane & 3;
    const int split = blockIdx.x;
    const int64_t b = blockIdx.z;
    const int row_tiles = (p.rows + RT - 1) / RT;
    const int64_t kvh = blockIdx.y / row_tiles;
    const int row0 = (int)(blockIdx.y % row_tiles) * RT;
    const int64_t pair = b * p.Hkv + kvh;
    const int VG = (D + p.group - 1) / p.group;

    for (int i = tid; i < RT * D; i += NT) {
        const int r = i / D, c = i % D, rr = row0 + r;
        float x = 0.0f;
        if (rr < p.rows) {
            const int64_t h = kvh * p.qgroup + rr / p.nq, qi = rr % p.nq;
            x = dload(p.q, b * p.q.s[0] + h * p.q.s[1] + qi * p.q.s[2] + c * p.q.s[3]) * p.qscale;
        }
        q_s[i] = x;
    }
    __syncthreads();

    // This warp's part of the split, whole tiles.
    const int64_t n_begin = (int64_t)split * p.chunk, n_end = min(p.N, n_begin + p.chunk);
    const int64_t tiles_total = (n_end - n_begin + TOK - 1) / TOK;
    const int64_t per_warp = (tiles_total + WARPS - 1) / WARPS;
    const int64_t w_begin = n_begin + min(tiles_total, per_warp * warp) * TOK;
    const int64_t w_end = min(n_end, n_begin + min(tiles_total, per_warp * (warp + 1)) * TOK);
    const int my_tiles = w_end > w_begin ? (int)((w_end - w_begin + TOK - 1) / TOK) : 0;

    unsigned char *ring = stages + (size_t)warp * L::STAGES * L::BYTES;
    // Where this warp's data start; from tile to tile every source moves by a constant, and the
    // per-lane parts of a tile (which 16-byte units a lane copies, and to where) never change.
    const uint8_t *k_src = p.kcodes + (pair * p.N + w_begin) * L::RB;
    const uint8_t *v_src = p.vcodes + (pair * p.N + w_begin) * L::RB;
    const int32_t *slot_src = p.slot + b * p.N + w_begin;
    const __half *ksc_pair = p.kscale + pair * p.KG * D, *kze_pair = p.kzero + pair * p.KG * D;
    // V scales: a tile's TOK * VG halves lie at the same offset (vs_shift) inside the 16-byte
    // window that holds them, since a tile moves by 32 * VG bytes.
    const int64_t vs_first = (pair * p.N + w_begin) * VG * 2, vs_window = vs_first & ~int64_t(15);
    const int vs_shift = (int)(vs_first - vs_window);
    const int vs_units = (vs_shift + TOK * VG * 2 + 15) / 16;
    const unsigned char *vsc_src = reinterpret_cast<const unsigned char *>(p.vscale) + vs_window;
    const unsigned char *vze_src = reinterpret_cast<const unsigned char *>(p.vzero) + vs_window;
    const int64_t vs_left = p.vscale_bytes - vs_window;  // bytes from the window to the end of v_scale
    constexpr int UNITS = TOK * L::RB / 16;                // 16-byte units of one tile's codes
    constexpr int UPL = (UNITS + 31) / 32;                 // of them per lane
    int unit_tok[UPL], unit_src[UPL], unit_k[UPL], unit_v[UPL];
#pragma unroll
    for (int x = 0; x < UPL; ++x) {
        const int u = lane + 32 * x, t = u / (L::RB / 16), off = (u % (L::RB / 16)) * 16;
        unit_tok[x] = u < UNITS ? t : TOK;  // TOK: no unit for this lane
        unit_src[x] = t * L::RB + off;
        unit_k[x] = L::K_OFF + t * L::KSTRIDE + off;
        unit_v[x] = L::V_OFF + t * L::VSTRIDE + off;
    }
    // Fills one stage with this warp's tile i (past the end of the sequence: zeros).
    auto issue = [&](int stage, int i) {
        unsigned char *st = ring + stage * L::BYTES;
        const int64_t t0 = w_begin + (int64_t)i * TOK;
        const int left = (int)min((int64_t)TOK, p.N - t0);  // tokens of the tile inside the sequence
        const int64_t step = (int64_t)i * (TOK * L::RB);
#pragma unroll
        for (int x = 0; x < UPL; ++x) {
            if (unit_tok[x] >= TOK) continue;
            const bool in = unit_tok[x] < left;
            cp_async16(st + unit_k[x], in ? k_src + step + unit_src[x] : p.kcodes, in ? 16 : 0);
            cp_async16(st + unit_v[x], in ? v_src + step + unit_src[x] : p.vcodes, in ? 16 : 0);
        }
        if (lane < D / 8) {  // K scale and zero of the tile's token group
            const int64_t at = (t0 >> p.group_log2) * D + lane * 8;
            cp_async16(st + L::KSC_OFF + lane * 16, ksc_pair + at, 16);
            cp_async16(st + L::KZE_OFF + lane * 16, kze_pair + at, 16);
        }
        if (lane < vs_units) {  // V scales, read only as far as the tensor goes
            const int64_t at = (int64_t)i * (TOK * VG * 2) + lane * 16, rest = vs_left - at;
            const int bytes = rest <= 0 ? 0 : rest >= 16 ? 16 : (int)rest;
            cp_async16(st + L::VSC_OFF + lane * 16, bytes > 0 ? vsc_src + at : vsc_src, bytes);
            cp_async16(st + L::VZE_OFF + lane * 16, bytes > 0 ? vze_src + at : vze_src, bytes);
        }
        if (lane < TOK) {
            const bool in = lane < left;
            cp_async4(st + L::SLOT_OFF + lane * 4, in ? slot_src + (int64_t)i * TOK + lane : p.slot, in ? 4 : 0);
        }
    };

    // Query fragments (Q' in fp16), rebuilt when the K token group changes, and the K-zero bias
    // of rows g and g + 8.
    uint32_t qa[KSTEPS][4] = {};  // rows 8..15 stay 0 unless TALL
    float bias[2] = {0.0f, 0.0f};
    int64_t frag_group = -1;
    auto build_query = [&](const unsigned char *st) {
        const __half *ksc = reinterpret_cast<const __half *>(st + L::KSC_OFF);
        const __half *kze = reinterpret_cast<const __half *>(st + L::KZE_OFF);
        const int c0 = j * (D / 4);
#pragma unroll
        for (int half_row = 0; half_row < (TALL ? 2 : 1); ++half_row) {
            const float *qr = q_s + (g + 8 * half_row) * D;
            float part = 0.0f;
#pragma unroll
            for (int s = 0; s < KSTEPS; ++s) {
#pragma unroll
                for (int half_k = 0; half_k < 2; ++half_k) {
                    const int ca = c0 + k_pair_channel<BITS>(2 * s + half_k), cb = ca + 16 / BITS;
                    const float xa = qr[ca] * __half2float(ksc[ca]), xb = qr[cb] * __half2float(ksc[cb]);
                    qa[s][half_row + 2 * half_k] = as_u32(__floats2half2_rn(xa, xb));
                    part = fmaf(qr[ca], __half2float(kze[ca]), part);
                    part = fmaf(qr[cb], __half2float(kze[cb]), part);
                }
            }
            part += __shfl_xor_sync(0xffffffffu, part, 1);
            part += __shfl_xor_sync(0xffffffffu, part, 2);
            bias[half_row] = part;
        }
    };

    float o[NTILES][4];
#pragma unroll
    for (int m = 0; m < NTILES; ++m) o[m][0] = o[m][1] = o[m][2] = o[m][3] = 0.0f;
    float m_run[2] = {-INFINITY, -INFINITY}, l_run[2] = {0.0f, 0.0f};
    const int vg_lane = (g * (D / 8)) / p.group;  // a lane's V channels lie in one group

    for (int s = 0; s < L::STAGES - 1; ++s) {
        if (s < my_tiles) issue(s, s);
        cp_async_commit();
    }
    for (int i = 0; i < my_tiles; ++i) {
        if (i + L::STAGES - 1 < my_tiles) issue((i + L::STAGES - 1) % L::STAGES, i + L::STAGES - 1);
        cp_async_commit();
        cp_async_wait<L::STAGES - 1>();
        __syncwarp();
        const unsigned char *st = ring + (i % L::STAGES) * L::BYTES;
        const int64_t t0 = w_begin + (int64_t)i * TOK;
        const int in_seq = (int)min((int64_t)TOK, p.N - t0);  // tokens of this tile inside the sequence
        if ((t0 >> p.group_log2) != frag_group) {
            frag_group = t0 >> p.group_log2;
            build_query(st);
        }
        const int32_t *slots = reinterpret_cast<const int32_t *>(st + L::SLOT_OFF);
        auto slot_of = [&](int t) {  // -1: not salient (past the end, or a corrupt slot map)
            const int32_t s = slots[t];
            return t < in_seq && s >= 0 && s < p.S ? s : -1;
        };

        // S = Q' K^T + bias; n-tile t holds tokens 8t..8t+7, this lane's columns 2j and 2j+1.
        float sc[2][4];
        {
            uint32_t kw[2][KWORDS];
#pragma unroll
            for (int t = 0; t < 2; ++t) {
                const unsigned char *krow = st + L::K_OFF + (8 * t + g) * L::KSTRIDE + j * KRUN;
#pragma unroll
                for (int w = 0; w < KWORDS; w += (KWORDS >= 4 ? 4 : KWORDS)) {
                    if constexpr (KWORDS >= 4) {
                        const uint4 x = *reinterpret_cast<const uint4 *>(krow + 4 * w);
                        kw[t][w] = x.x, kw[t][w + 1] = x.y, kw[t][w + 2] = x.z, kw[t][w + 3] = x.w;
                    } else if constexpr (KWORDS == 2) {
                        const uint2 x = *reinterpret_cast<const uint2 *>(krow);
                        kw[t][0] = x.x, kw[t][1] = x.y;
                    } else {
                        kw[t][0] = *reinterpret_cast<const uint32_t *>(krow);
                    }
                }
            }
            // Two independent chains of mma per n-tile (even and odd k-steps), so one mma's
            // latency hides behind the others.
            float acc[2][2][4] = {};
#pragma unroll
            for (int s = 0; s < KSTEPS; ++s) {
                const int P0 = 2 * s, P1 = 2 * s + 1;
#pragma unroll
                for (int t = 0; t < 2; ++t) {
                    const uint32_t b0 = as_u32(code_pair<BITS>(kw[t][P0 / (16 / BITS)], P0 % (16 / BITS)));
                    const uint32_t b1 = as_u32(code_pair<BITS>(kw[t][P1 / (16 / BITS)], P1 % (16 / BITS)));
                    heed::cuda::mma16816<__half>(acc[t][s & 1], qa[s], b0, b1);
                }
            }
#pragma unroll
            for (int t = 0; t < 2; ++t)
#pragma unroll
                for (int e = 0; e < 4; ++e) sc[t][e] = acc[t][0][e] + acc[t][1][e];
        }
        // Salient tokens: their codes are 0; the score is the query against the fp16 row.
        int my_slot[2][2];
        bool any_salient = false;
#pragma unroll
        for (int t = 0; t < 2; ++t)
#pragma unroll
            for (int e = 0; e < 2; ++e) {
                my_slot[t][e] = slot_of(8 * t + 2 * j + e);
                any_salient |= my_slot[t][e] >= 0;
            }
        if (__any_sync(0xffffffffu, any_salient)) {
#pragma unroll
            for (int t = 0; t < 2; ++t)
#pragma unroll
                for (int e = 0; e < 2; ++e) {
                    if (my_slot[t][e] < 0) continue;
                    const __half *row = p.sk + (pair * p.S + my_slot[t][e]) * D;
#pragma unroll
                    for (int half_row = 0; half_row < (TALL ? 2 : 1); ++half_row) {
                        const float *qr = q_s + (g + 8 * half_row) * D;
                        float acc = 0.0f;
                        for (int c = 0; c < D; ++c) acc = fmaf(qr[c], __half2float(row[c]), acc);
                        sc[t][2 * half_row + e] = acc - bias[half_row];  // the bias is added back below
                    }
                }
        }

        // Online softmax per row (base 2); P to fp16 as the A fragment of P V.
        uint32_t pa[4];
#pragma unroll
        for (int half_row = 0; half_row < 2; ++half_row) {
            if (!TALL && half_row == 1) {
                pa[1] = pa[3] = 0u;
                continue;
            }
            const int rr = row0 + g + 8 * half_row;
            // The last token of this tile the row sees (tile-relative; -1: none).
            const int64_t last = min(w_end - 1, p.causal ? p.N - p.nq + rr % p.nq : p.N - 1) - t0;
            const int last_rel = rr >= p.rows || last < 0 ? -1 : (int)min(last, (int64_t)TOK);
            float x[4];
#pragma unroll
            for (int t = 0; t < 2; ++t)
#pragma unroll
                for (int e = 0; e < 2; ++e)
                    x[2 * t + e] = 8 * t + 2 * j + e <= last_rel ? sc[t][2 * half_row + e] + bias[half_row] : -INFINITY;
            float mx = fmaxf(fmaxf(x[0], x[1]), fmaxf(x[2], x[3]));
            mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
            mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
            const float m_new = fmaxf(m_run[half_row], mx);
            const float m_use = m_new == -INFINITY ? 0.0f : m_new;
            const float alpha = heed::cuda::fast_exp2(m_run[half_row] - m_use);
            m_run[half_row] = m_new;
            __half2 p01 = __floats2half2_rn(heed::cuda::fast_exp2(x[0] - m_use), heed::cuda::fast_exp2(x[1] - m_use));
            __half2 p23 = __floats2half2_rn(heed::cuda::fast_exp2(x[2] - m_use), heed::cuda::fast_exp2(x[3] - m_use));
            const float2 f01 = __half22float2(p01), f23 = __half22float2(p23);
            l_run[half_row] = fmaf(l_run[half_row], alpha, (f01.x + f01.y) + (f23.x + f23.y));
            pa[half_row] = as_u32(p01);
            pa[half_row + 2] = as_u32(p23);
#pragma unroll
            for (int m = 0; m < NTILES; ++m) o[m][2 * half_row] *= alpha, o[m][2 * half_row + 1] *= alpha;
        }

        // O += P V: this lane supplies tokens (2j, 2j+1) and (2j+8, 2j+9) at channels
        // g * D/8 + m of n-tile m, dequantized to fp16.
        const int toks[4] = {2 * j, 2 * j + 1, 2 * j + 8, 2 * j + 9};
        uint32_t vw[4][VWORDS];
        __half2 vscale2[2], vzero2[2];
        const __half *vsc = reinterpret_cast<const __half *>(st + L::VSC_OFF + vs_shift);
        const __half *vze = reinterpret_cast<const __half *>(st + L::VZE_OFF + vs_shift);
#pragma unroll
        for (int k = 0; k < 4; ++k) {
            const unsigned char *vrow = st + L::V_OFF + toks[k] * L::VSTRIDE + g * VRUN;
            if constexpr (VRUN == 16) {
                const uint4 x = *reinterpret_cast<const uint4 *>(vrow);
                vw[k][0] = x.x, vw[k][1] = x.y, vw[k][2] = x.z, vw[k][3] = x.w;
            } else if constexpr (VRUN == 8) {
                const uint2 x = *reinterpret_cast<const uint2 *>(vrow);
                vw[k][0] = x.x, vw[k][1] = x.y;
            } else if constexpr (VRUN == 4) {
                vw[k][0] = *reinterpret_cast<const uint32_t *>(vrow);
            } else {
                vw[k][0] = *reinterpret_cast<const uint16_t *>(vrow);
            }
        }
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            vscale2[h] = __halves2half2(vsc[toks[2 * h] * VG + vg_lane], vsc[toks[2 * h + 1] * VG + vg_lane]);
            vzero2[h] = __halves2half2(vze[toks[2 * h] * VG + vg_lane], vze[toks[2 * h + 1] * VG + vg_lane]);
        }
#pragma unroll
        for (int u = 0; u < VUNITS; ++u) {
            const uint32_t sel = (u & 1) ? 0x7632u : 0x5410u;  // the same 16 bits of two tokens' words
            const uint32_t y0 = __byte_perm(vw[0][u / 2], vw[1][u / 2], sel);
            const uint32_t y1 = __byte_perm(vw[2][u / 2], vw[3][u / 2], sel);
#pragma unroll
            for (int k = 0; k < 16 / BITS; ++k) {
                const int m = u * (16 / BITS) + k;
                const __half2 v0 = __hfma2(code_pair<BITS>(y0, k), vscale2[0], vzero2[0]);
                const __half2 v1 = __hfma2(code_pair<BITS>(y1, k), vscale2[1], vzero2[1]);
                heed::cuda::mma16816<__half>(o[m], pa, as_u32(v0), as_u32(v1));
            }
        }
        // Salient tokens added their codes' zero V above; their fp16 V rows go in here, each
        // with the fp16 P the other tokens used.
        if (__any_sync(0xffffffffu, any_salient)) {
            for (int n = 0; n < TOK; ++n) {
                const int sl = slot_of(n);
                if (sl < 0) continue;  // the same for every lane
                const __half *row = p.sv + (pair * p.S + sl) * D;
                const int holder = 4 * g + (n % 8) / 2, t = n / 8, e = n % 2;
#pragma unroll
                for (int half_row = 0; half_row < (TALL ? 2 : 1); ++half_row) {
                    const uint32_t both = __shfl_sync(0xffffffffu, pa[half_row + 2 * t], holder);
                    const __half2 ph = as_h2(both);
                    const float pn = __half2float(e ? __high2half(ph) : __low2half(ph));
#pragma unroll
                    for (int m = 0; m < NTILES; ++m) {
                        o[m][2 * half_row] = fmaf(pn, __half2float(row[(2 * j) * (D / 8) + m]), o[m][2 * half_row]);
                        o[m][2 * half_row + 1] = fmaf(pn, __half2float(row[(2 * j + 1) * (D / 8) + m]), o[m][2 * half_row + 1]);
                    }
                }
            }
        }
        __syncwarp();  // every lane is done with this stage before it is filled again
    }
    cp_async_wait<0>();

    // Row sums over the four lanes of a row, then the warps' states merge in shared memory.
#pragma unroll
    for (int h = 0; h < 2; ++h) {
        l_run[h] += __shfl_xor_sync(0xffffffffu, l_run[h], 1);
        l_run[h] += __shfl_xor_sync(0xffffffffu, l_run[h], 2);
    }
    __syncthreads();  // every warp is done with its stages: the merge buffer reuses them
    float *mo = reinterpret_cast<float *>(stages);      // [WARPS][RT][D]
    float *ml = mo + WARPS * RT * D;                     // [WARPS][RT][2]
#pragma unroll
    for (int h = 0; h < (TALL ? 2 : 1); ++h) {
        const int r = g + 8 * h;
#pragma unroll
        for (int m = 0; m < NTILES; ++m) {
            mo[(warp * RT + r) * D + (2 * j) * (D / 8) + m] = o[m][2 * h];
            mo[(warp * RT + r) * D + (2 * j + 1) * (D / 8) + m] = o[m][2 * h + 1];
        }
        if (j == 0) ml[(warp * RT + r) * 2] = m_run[h], ml[(warp * RT + r) * 2 + 1] = l_run[h];
    }
    __syncthreads();
    for (int i = tid; i < RT * D; i += NT) {
        const int r = i / D, c = i % D, rr = row0 + r;
        if (rr >= p.rows) continue;
        float M = -INFINITY;
#pragma unroll
        for (int w = 0; w < WARPS; ++w) M = fmaxf(M, ml[(w * RT + r) * 2]);
        const float M_use = M == -INFINITY ? 0.0f : M;
        float Lsum = 0.0f, O = 0.0f;
#pragma unroll
        for (int w = 0; w < WARPS; ++w) {
            const float f = exp2f(ml[(w * RT + r) * 2] - M_use);
            Lsum = fmaf(f, ml[(w * RT + r) * 2 + 1], Lsum);
            O = fmaf(f, mo[(w * RT + r) * D + c], O);
        }
        const int64_t h = kvh * p.qgroup + rr / p.nq, qi = rr % p.nq;
        const int64_t row = (b * p.H + h) * p.nq + qi;
        if (p.splits == 1) {
            dstore(p.out, b * p.out.s[0] + h * p.out.s[1] + qi * p.out.s[2] + c * p.out.s[3], O / Lsum);
        } else {
            p.ws_o[(row * p.splits + split) * D + c] = O;
            if (c == 0) {
                p.ws_ml[(row * p.splits + split) * 2] = M;
                p.ws_ml[(row * p.splits + split) * 2 + 1] = Lsum;
            }
        }
    }
}

// One block per query row: merges the splits' (max, sum, output).
template <int D>
__global__ void combine_kernel(decode_params p) {
    const int64_t row = blockIdx.x;  // (b * H + h) * nq + qi
    const int c = threadIdx.x;
    float M = -INFINITY;
    for (int s = 0; s < p.splits; ++s) M = fmaxf(M, p.ws_ml[(row * p.splits + s) * 2]);
    float L = 0.0f, o = 0.0f;
    for (int s = 0; s < p.splits; ++s) {
        const float m = p.ws_ml[(row * p.splits + s) * 2], l = p.ws_ml[(row * p.splits + s) * 2 + 1];
        if (l == 0.0f) continue;  // a split this row sees nothing of
        const float w = exp2f(m - M);
        L = fmaf(w, l, L);
        o = fmaf(w, p.ws_o[(row * p.splits + s) * D + c], o);
    }
    const int64_t qi = row % p.nq, h = (row / p.nq) % p.H, b = row / (p.nq * p.H);
    dstore(p.out, b * p.out.s[0] + h * p.out.s[1] + qi * p.out.s[2] + c * p.out.s[3], o / L);
}

// Blocks of one launch that fit on the device at once.
template <int BITS, int D, int RT>
heed_status resident_blocks(int device, int *blocks) {
    const size_t smem = smem_bytes<BITS, D, RT>();
    HEED_CUDA_CHECK(cudaFuncSetAttribute(decode_kernel<BITS, D, RT>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
    int per_sm = 0, sms = 0;
    HEED_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, decode_kernel<BITS, D, RT>, NT, smem));
    HEED_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
    *blocks = std::max(1, per_sm) * sms;
    return HEED_OK;
}

template <int BITS, int D, int RT>
heed_status launch(decode_params p, int64_t B, int64_t Hkv) {
    const int row_tiles = (p.rows + RT - 1) / RT;
    decode_kernel<BITS, D, RT><<<dim3((unsigned)p.splits, (unsigned)(Hkv * row_tiles), (unsigned)B), NT, smem_bytes<BITS, D, RT>()>>>(p);
    HEED_CUDA_CHECK_LAUNCH("decode_kernel");
    if (p.splits > 1) {
        combine_kernel<D><<<(unsigned)(B * p.H * p.nq), D>>>(p);
        HEED_CUDA_CHECK_LAUNCH("combine_kernel");
    }
    return HEED_OK;
}

// The kernel instance for a shape: Op::run<BITS, D, RT>() is called with the right constants.
struct occupancy_op {
    int device;
    int *blocks;
    template <int BITS, int D, int RT>
    heed_status run() const { return resident_blocks<BITS, D, RT>(device, blocks); }
};
struct launch_op {
    const decode_params *p;
    int64_t B, Hkv;
    template <int BITS, int D, int RT>
    heed_status run() const { return launch<BITS, D, RT>(*p, B, Hkv); }
};
template <typename Op, int BITS, int D>
heed_status by_rows(const Op &op, int rows) {
    return rows <= 8 ? op.template run<BITS, D, 8>() : op.template run<BITS, D, 16>();
}
template <typename Op, int BITS>
heed_status by_dim(const Op &op, int64_t d, int rows) {
    return d == 64 ? by_rows<Op, BITS, 64>(op, rows) : by_rows<Op, BITS, 128>(op, rows);
}
template <typename Op>
heed_status dispatch(const Op &op, int bits, int64_t d, int rows) {
    return bits == 8 ? by_dim<Op, 8>(op, d, rows) : bits == 4 ? by_dim<Op, 4>(op, d, rows) : by_dim<Op, 2>(op, d, rows);
}

}  // namespace

heed_status quant_decode_cuda(const decode_args &a, int device) {
    device_scope scope(device);
    HEED_CUDA_CHECK(scope.err);
    const quant_dims &D = a.dims;
    const heed_quant_kv &c = *a.cache;
    const auto misaligned = [](const void *ptr) { return reinterpret_cast<uintptr_t>(ptr) % 16 != 0; };
    if (misaligned(c.k_codes.data) || misaligned(c.v_codes.data) || misaligned(c.k_scale.data) || misaligned(c.k_zero.data) ||
        misaligned(c.v_scale.data) || misaligned(c.v_zero.data) || reinterpret_cast<uintptr_t>(c.salient_slot.data) % 4 != 0)
        return fail(HEED_ERR_UNSUPPORTED, "cache: the CUDA decode needs 16-byte aligned code and scale buffers (and a 4-byte aligned slot map)");
    decode_params p{};
    p.q = make_view(a.q), p.out = make_view(a.out);
    p.kcodes = static_cast<const uint8_t *>(c.k_codes.data), p.vcodes = static_cast<const uint8_t *>(c.v_codes.data);
    p.kscale = static_cast<const __half *>(c.k_scale.data), p.kzero = static_cast<const __half *>(c.k_zero.data);
    p.vscale = static_cast<const __half *>(c.v_scale.data), p.vzero = static_cast<const __half *>(c.v_zero.data);
    p.sk = static_cast<const __half *>(c.salient_k.data), p.sv = static_cast<const __half *>(c.salient_v.data);
    p.slot = static_cast<const int32_t *>(c.salient_slot.data);
    p.H = a.H, p.Hkv = D.Hkv, p.N = D.N, p.S = D.S, p.KG = D.k_groups(), p.nq = a.nq;
    p.group = D.group, p.group_log2 = D.group == 32 ? 5 : D.group == 64 ? 6 : 7, p.qgroup = (int)(a.H / D.Hkv), p.rows = (int)(p.qgroup * a.nq), p.causal = a.causal;
    p.qscale = a.scale * kLog2e;
    p.vscale_bytes = D.B * D.Hkv * D.N * D.v_groups() * 2;
    const int RT = p.rows <= 8 ? 8 : 16;
    const int64_t row_tiles = (p.rows + RT - 1) / RT;
    if (D.B > 65535 || D.Hkv * row_tiles > 65535) return fail(HEED_ERR_UNSUPPORTED, "q: too many batch items or query rows for the CUDA decode");

    // Splits: one full wave of resident blocks, not more (a second, mostly empty wave costs more
    // than it gives); each split at least one tile per warp.
    int resident = 0;
    heed_status s = dispatch(occupancy_op{device, &resident}, D.bits, D.d, p.rows);
    if (s != HEED_OK) return s;
    const int64_t unit = (int64_t)WARPS * TOK;
    const int64_t units = (D.N + unit - 1) / unit;
    int64_t splits = a.num_splits > 0 ? a.num_splits : std::max<int64_t>(1, resident / (D.B * D.Hkv * row_tiles));
    splits = std::max<int64_t>(1, std::min(splits, units));
    // A split is a whole number of warp tiles per warp, so a tile never straddles a K group
    // (groups are 32, 64 or 128 tokens and tiles start at multiples of 16).
    p.chunk = ((units + splits - 1) / splits) * unit;
    p.splits = (int)((D.N + p.chunk - 1) / p.chunk);

    void *ws = nullptr;
    if (p.splits > 1) {
        const int64_t rows_total = D.B * a.H * a.nq;
        const size_t bytes = (size_t)rows_total * p.splits * (D.d + 2) * sizeof(float);
        HEED_CUDA_CHECK(cudaMallocAsync(&ws, bytes, 0));
        p.ws_o = static_cast<float *>(ws);
        p.ws_ml = p.ws_o + rows_total * p.splits * D.d;
    }
    s = dispatch(launch_op{&p, D.B, D.Hkv}, D.bits, D.d, p.rows);
    if (ws) {
        cudaError_t err = cudaFreeAsync(ws, 0);
        if (s == HEED_OK && err != cudaSuccess) return cuda_status(err, "cudaFreeAsync");
    }
    if (s != HEED_OK) return s;
    return ok();
}

}  // namespace heed::linear_kv
