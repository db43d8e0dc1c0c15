// quant_decode_attention.cu - decode attention over the quantized KV cache on CUDA
// (flash-decoding).
//
// Grid: (split of the sequence, kv head x row tile, batch item). A block holds the query rows
// that share one kv head (GQA group x nq rows, up to RT of them) and walks its split in tiles
// of 32 tokens:
//   1. the tile's packed K and V codes arrive as 16-byte loads (issued one tile ahead, into
//      registers), are dequantized once into shared memory (fp16 copies for salient tokens);
//   2. warp w scores rows w, w+4, ...: lane = token; an online softmax per row (base 2);
//   3. each thread accumulates P V for one channel over its rows.
// With one split the block writes the output; otherwise it writes (max, sum, unnormalized
// output) per row and a combine kernel merges the splits.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "cuda/linear_kv_cuda.hpp"

namespace heed::linear_kv {
namespace {

constexpr int TT = 32;       // tokens per tile
constexpr int NT = 128;      // threads per block
constexpr int MAXVG = 4;     // V channel groups per token held in shared memory (D / 32)
constexpr float kLog2e = 1.4426950408889634f;

struct decode_params {
    dview q, out;
    const uint8_t *kcodes, *vcodes;
    const __half *kscale, *kzero, *vscale, *vzero, *sk, *sv;
    const int32_t *slot;
    float *ws_o, *ws_ml;  // split partials: [row][split][D], [row][split][2]
    int64_t H, Hkv, N, S, KG, nq, chunk;
    int group, qgroup, rows, splits, causal;
    float qscale;  // scale * log2(e)
};

template <int BITS, int D>
struct tile_shape {
    static constexpr int RB = D * BITS / 8;          // bytes per token row
    static constexpr int UNITS = TT * RB / 16;       // 16-byte units per tile
    static constexpr int UPT = (UNITS + NT - 1) / NT;  // units per thread
};

template <int BITS, int D, int RT>
size_t smem_bytes() {
    return sizeof(float) * ((size_t)RT * D + TT * (D + 1) + TT * D + RT * TT + RT + 2 * RT + 2 * D + 2 * TT * MAXVG * 2);
}

template <int BITS, int D, int RT>
__global__ void __launch_bounds__(NT, RT == 8 ? 4 : 1) decode_kernel(decode_params p) {
    using shape = tile_shape<BITS, D>;
    extern __shared__ float sm[];
    float *q_s = sm;                     // [RT][D]
    float *k_s = q_s + RT * D;           // [TT][D+1]
    float *v_s = k_s + TT * (D + 1);     // [TT][D]
    float *p_s = v_s + TT * D;           // [RT][TT]
    float *alpha_s = p_s + RT * TT;      // [RT]
    float *ml_s = alpha_s + RT;          // [RT][2]
    float *ksc_s = ml_s + 2 * RT;        // [D] K scale of the tile's token group
    float *kze_s = ksc_s + D;            // [D]
    float *vsc_s = kze_s + D;            // [TT][MAXVG]
    float *vze_s = vsc_s + TT * MAXVG;   // [TT][MAXVG]

    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int split = blockIdx.x;
    const int64_t b = blockIdx.z;
    const int row_tiles = (p.rows + RT - 1) / RT;
    const int64_t kvh = blockIdx.y / row_tiles;
    const int row0 = (int)(blockIdx.y % row_tiles) * RT;
    const int64_t pair = b * p.Hkv + kvh;
    const int64_t n_begin = (int64_t)split * p.chunk, n_end = min(p.N, n_begin + p.chunk);
    const int VG = (D + p.group - 1) / p.group;

    // Query rows, pre-scaled (rows past the end are zero).
    for (int i = tid; i < RT * D; i += NT) {
        const int r = i / D, c = i % D, rr = row0 + r;
        float x = 0.0f;
        if (rr < p.rows) {
            const int64_t h = kvh * p.qgroup + rr / p.nq, qi = rr % p.nq;
            x = dload(p.q, b * p.q.s[0] + h * p.q.s[1] + qi * p.q.s[2] + c * p.q.s[3]) * p.qscale;
        }
        q_s[i] = x;
    }

    const uint8_t *kbase = p.kcodes + pair * p.N * shape::RB;
    const uint8_t *vbase = p.vcodes + pair * p.N * shape::RB;
    const int32_t *slot = p.slot + b * p.N;
    // Everything a tile needs from global memory is loaded one tile ahead into registers:
    // packed codes, the salient slot of each unit's token, and the K and V scales.
    uint4 kraw[shape::UPT], vraw[shape::UPT];
    int32_t slot_r[shape::UPT];
    __half ksc_r = __float2half_rn(0.0f), kze_r = ksc_r, vsc_r = ksc_r, vze_r = ksc_r;
    auto load_raw = [&](int64_t t0) {
#pragma unroll
        for (int u = 0; u < shape::UPT; ++u) {
            const int unit = tid + u * NT;
            kraw[u] = make_uint4(0, 0, 0, 0), vraw[u] = make_uint4(0, 0, 0, 0);
            slot_r[u] = -1;
            if (unit < shape::UNITS) {
                const int64_t n = t0 + unit * 16 / shape::RB;
                if (n < p.N) {
                    const int64_t off = t0 * shape::RB + unit * 16;
                    kraw[u] = __ldg(reinterpret_cast<const uint4 *>(kbase + off));
                    vraw[u] = __ldg(reinterpret_cast<const uint4 *>(vbase + off));
                    slot_r[u] = __ldg(slot + n);
                }
            }
        }
        if (tid < D) {  // K scale of the tile's token group (a tile never straddles a group:
                        // tiles start at multiples of 32 and groups are 32, 64 or 128 long)
            const int64_t si = (pair * p.KG + t0 / p.group) * D + tid;
            ksc_r = p.kscale[si], kze_r = p.kzero[si];
        }
        if (tid < TT * VG) {  // V scales per token
            const int64_t n = t0 + tid / VG;
            if (n < p.N) {
                const int64_t si = (pair * p.N + n) * VG + tid % VG;
                vsc_r = p.vscale[si], vze_r = p.vzero[si];
            }
        }
    };

    // Per-row softmax state, held by the warp that scores the row (rows warp + 4i).
    constexpr int RW = RT / 4;
    float m_r[RW], l_r[RW];
#pragma unroll
    for (int i = 0; i < RW; ++i) m_r[i] = -INFINITY, l_r[i] = 0.0f;
    // Output accumulators: channel c = tid % D, rows rsub + TPR i.
    constexpr int TPR = NT / D;
    constexpr int RO = RT / TPR;
    const int oc = tid % D, rsub = tid / D;
    float o_r[RO];
#pragma unroll
    for (int i = 0; i < RO; ++i) o_r[i] = 0.0f;

    if (n_begin < n_end) load_raw(n_begin);
    for (int64_t t0 = n_begin; t0 < n_end; t0 += TT) {
        __syncthreads();  // the previous tile's readers are done with the shared buffers
        if (tid < D) ksc_s[tid] = __half2float(ksc_r), kze_s[tid] = __half2float(kze_r);
        if (tid < TT * VG) {
            const int t = tid / VG, gi = tid % VG;
            vsc_s[t * MAXVG + gi] = __half2float(vsc_r), vze_s[t * MAXVG + gi] = __half2float(vze_r);
        }
        __syncthreads();
        // Dequantize this thread's units into k_s / v_s.
#pragma unroll
        for (int u = 0; u < shape::UPT; ++u) {
            const int unit = tid + u * NT;
            if (unit >= shape::UNITS) continue;
            const int t = unit * 16 / shape::RB;
            const int c0 = (unit * 16 % shape::RB) * (8 / BITS);
            const int64_t n = t0 + t;
            const int32_t s = slot_r[u] < p.S ? slot_r[u] : -1;  // a corrupt slot map reads no foreign memory
            const uint32_t kw[4] = {kraw[u].x, kraw[u].y, kraw[u].z, kraw[u].w};
            const uint32_t vw[4] = {vraw[u].x, vraw[u].y, vraw[u].z, vraw[u].w};
            constexpr int PER_WORD = 32 / BITS;
#pragma unroll
            for (int w = 0; w < 4; ++w) {
                const uint32_t kword = kw[w], vword = vw[w];
#pragma unroll 4
                for (int j = 0; j < PER_WORD; ++j) {  // codes low bits first
                    const int c = c0 + w * PER_WORD + j;
                    const unsigned kc = (kword >> (j * BITS)) & ((1u << BITS) - 1u);
                    const unsigned vc = (vword >> (j * BITS)) & ((1u << BITS) - 1u);
                    float kx, vx;
                    if (n >= p.N) {
                        kx = 0.0f, vx = 0.0f;
                    } else if (s >= 0) {
                        kx = __half2float(p.sk[(pair * p.S + s) * D + c]);
                        vx = __half2float(p.sv[(pair * p.S + s) * D + c]);
                    } else {
                        kx = fmaf((float)kc, ksc_s[c], kze_s[c]);
                        const int gi = c / p.group;
                        vx = fmaf((float)vc, vsc_s[t * MAXVG + gi], vze_s[t * MAXVG + gi]);
                    }
                    k_s[t * (D + 1) + c] = kx;
                    v_s[t * D + c] = vx;
                }
            }
        }
        __syncthreads();
        if (t0 + TT < n_end) load_raw(t0 + TT);  // in flight while this tile computes

        // Scores and the online softmax: warp w, rows w + 4i; lane = token.
        {
            const int64_t n = t0 + lane;
            float acc[RW];
#pragma unroll
            for (int i = 0; i < RW; ++i) acc[i] = 0.0f;
#pragma unroll 8
            for (int c = 0; c < D; ++c) {
                const float kx = k_s[lane * (D + 1) + c];
#pragma unroll
                for (int i = 0; i < RW; ++i) acc[i] = fmaf(q_s[(warp + 4 * i) * D + c], kx, acc[i]);
            }
#pragma unroll
            for (int i = 0; i < RW; ++i) {
                const int r = warp + 4 * i, rr = row0 + r;
                bool ok = n < n_end && rr < p.rows;
                if (ok && p.causal) ok = n <= p.N - p.nq + rr % p.nq;
                const float sc = ok ? acc[i] : -INFINITY;
                float mx = sc;
#pragma unroll
                for (int o = 16; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
                const float m_new = fmaxf(m_r[i], mx);
                float pr = 0.0f, alpha = 1.0f;
                if (m_new != -INFINITY) {
                    pr = exp2f(sc - m_new);
                    alpha = exp2f(m_r[i] - m_new);
                }
                float sum = pr;
#pragma unroll
                for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
                l_r[i] = l_r[i] * alpha + sum;
                m_r[i] = m_new;
                p_s[r * TT + lane] = pr;
                if (lane == 0) alpha_s[r] = alpha;
            }
        }
        __syncthreads();
        // O = alpha O + P V.
#pragma unroll
        for (int i = 0; i < RO; ++i) o_r[i] *= alpha_s[rsub + TPR * i];
#pragma unroll 4
        for (int t = 0; t < TT; ++t) {
            const float vx = v_s[t * D + oc];
#pragma unroll
            for (int i = 0; i < RO; ++i) o_r[i] = fmaf(p_s[(rsub + TPR * i) * TT + t], vx, o_r[i]);
        }
    }

    // Row statistics to shared memory for the output threads.
    __syncthreads();
    if (lane == 0)
#pragma unroll
        for (int i = 0; i < RW; ++i) ml_s[2 * (warp + 4 * i)] = m_r[i], ml_s[2 * (warp + 4 * i) + 1] = l_r[i];
    __syncthreads();
#pragma unroll
    for (int i = 0; i < RO; ++i) {
        const int r = rsub + TPR * i, rr = row0 + r;
        if (rr >= p.rows) continue;
        const int64_t h = kvh * p.qgroup + rr / p.nq, qi = rr % p.nq;
        const int64_t row = (b * p.H + h) * p.nq + qi;
        if (p.splits == 1) {
            dstore(p.out, b * p.out.s[0] + h * p.out.s[1] + qi * p.out.s[2] + oc * p.out.s[3], o_r[i] / ml_s[2 * r + 1]);
        } else {
            p.ws_o[(row * p.splits + split) * D + oc] = o_r[i];
            if (oc == 0) {
                p.ws_ml[(row * p.splits + split) * 2] = ml_s[2 * r];
                p.ws_ml[(row * p.splits + split) * 2 + 1] = ml_s[2 * r + 1];
            }
        }
    }
}

// ---- warp-per-tile kernel, for up to 8 query rows per kv head (the common decode) ----------
//
// The smem-tile kernel above moves every dequantized value through shared memory several times
// and is bound by shared-memory traffic. Here each warp owns whole tiles of 32 tokens and no
// block barrier sits in the loop:
//   scores: lane = token; its packed K row stays in registers; the K scale is folded into the
//           query (qk = q * scale_c, bias = q . zero, once per token group), so a score is
//           bias + sum_c qk_c * code_c, codes turned into floats with the 2^23 trick;
//   P V:    lane = CPL consecutive channels; the tile's V codes and scales go through a small
//           per-warp shared buffer (coalesced 16-byte loads in, one small load per token out).
// The four warps' (max, sum, output) are merged in shared memory at the end.

template <int BITS, int D, int R>
struct warp_shape {
    static constexpr int RB = D * BITS / 8;     // bytes per token row
    static constexpr int KW = RB / 4;           // 32-bit words per K row
    static constexpr int KU = RB / 16;          // 16-byte units per K row
    static constexpr int PER_WORD = 32 / BITS;  // codes per word
    static constexpr int CPL = D / 32;          // V channels per lane
    static constexpr int VU = 32 * RB / 16 / 32;  // 16-byte V units per lane per tile
};

template <int BITS, int D, int R>
size_t warp_smem_bytes() {
    using S = warp_shape<BITS, D, R>;
    // qs [R][D] + per warp: qk [R][D], V codes [32][RB], V scale/zero [32][MAXVG] half2; end: 4 x (R x (D + 2))
    const size_t loop = sizeof(float) * R * D + 4 * (sizeof(float) * R * D + 32 * S::RB + 32 * MAXVG * 4);
    const size_t merge = sizeof(float) * R * D + 4 * sizeof(float) * R * (D + 2);
    return loop > merge ? loop : merge;
}

__device__ __forceinline__ float code_to_float(uint32_t code) {
    return __int_as_float(0x4B000000u | code) - 8388608.0f;  // exact for code < 2^23
}

template <int BITS, int D, int R>
__global__ void __launch_bounds__(NT, R == 4 ? 4 : 3) decode_warp_kernel(decode_params p) {
    using S = warp_shape<BITS, D, R>;
    constexpr uint32_t MASK = (1u << BITS) - 1u;
    extern __shared__ __align__(16) unsigned char smem_raw[];
    float *qs = reinterpret_cast<float *>(smem_raw);  // [R][D]
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    unsigned char *wbase = smem_raw + sizeof(float) * R * D +
                           (size_t)warp * (sizeof(float) * R * D + 32 * S::RB + 32 * MAXVG * 4);
    float *qk = reinterpret_cast<float *>(wbase);                                      // [R][D]
    unsigned char *vcodes_s = wbase + sizeof(float) * R * D;                            // [32][RB]
    __half2 *vsz_s = reinterpret_cast<__half2 *>(vcodes_s + 32 * S::RB);                // [32][MAXVG]

    const int split = blockIdx.x;
    const int64_t kvh = blockIdx.y, b = blockIdx.z, pair = b * p.Hkv + kvh;
    const int64_t n_begin = (int64_t)split * p.chunk, n_end = min(p.N, n_begin + p.chunk);
    const int VG = (D + p.group - 1) / p.group;

    for (int i = tid; i < R * D; i += NT) {
        const int r = i / D, c = i % D;
        float x = 0.0f;
        if (r < p.rows) {
            const int64_t h = kvh * p.qgroup + r / p.nq, qi = r % p.nq;
            x = dload(p.q, b * p.q.s[0] + h * p.q.s[1] + qi * p.q.s[2] + c * p.q.s[3]) * p.qscale;
        }
        qs[i] = x;
    }
    __syncthreads();

    const uint8_t *kbase = p.kcodes + pair * p.N * S::RB;
    const uint8_t *vbase = p.vcodes + pair * p.N * S::RB;
    const int32_t *slot = p.slot + b * p.N;
    int vis[R];  // keys row r sees: n < vis[r]
#pragma unroll
    for (int r = 0; r < R; ++r) vis[r] = (int)(p.causal ? p.N - p.nq + r % p.nq + 1 : p.N);

    float m[R], l[R], o[R][S::CPL], bias[R];
#pragma unroll
    for (int r = 0; r < R; ++r) {
        m[r] = -INFINITY, l[r] = 0.0f, bias[r] = 0.0f;
#pragma unroll
        for (int j = 0; j < S::CPL; ++j) o[r][j] = 0.0f;
    }
    int64_t group_loaded = -1;
    const int my_c0 = lane * S::CPL;  // this lane's V channels
    const int my_g = my_c0 / p.group;

    for (int64_t t0 = n_begin + 32 * warp; t0 < n_end; t0 += 32 * 4) {
        const int64_t n = t0 + lane;
        // Issue every load of the tile first.
        uint4 kr[S::KU];
        uint4 vr[S::VU];
        int32_t sl = -1;
#pragma unroll
        for (int u = 0; u < S::KU; ++u) kr[u] = make_uint4(0, 0, 0, 0);
        if (n < p.N) {
#pragma unroll
            for (int u = 0; u < S::KU; ++u) kr[u] = __ldg(reinterpret_cast<const uint4 *>(kbase + n * S::RB) + u);
            sl = __ldg(slot + n);
        }
#pragma unroll
        for (int u = 0; u < S::VU; ++u) {
            const int unit = lane + 32 * u;                   // 16-byte unit within the tile's V rows
            const int64_t nt = t0 + unit * 16 / S::RB;
            vr[u] = nt < p.N ? __ldg(reinterpret_cast<const uint4 *>(vbase + t0 * S::RB) + unit) : make_uint4(0, 0, 0, 0);
        }
        const int32_t s_slot = sl < p.S ? sl : -1;  // a corrupt slot map reads no foreign memory
        uint32_t kw[S::KW];
#pragma unroll
        for (int u = 0; u < S::KU; ++u) kw[4 * u] = kr[u].x, kw[4 * u + 1] = kr[u].y, kw[4 * u + 2] = kr[u].z, kw[4 * u + 3] = kr[u].w;
        const int64_t grp = t0 / p.group;
        if (grp != group_loaded) {  // fold this token group's K scale into the query, its zero into a bias
            __syncwarp();
#pragma unroll
            for (int r = 0; r < R; ++r) {
                float part = 0.0f;
                for (int c = lane; c < D; c += 32) {
                    const int64_t si = (pair * p.KG + grp) * D + c;
                    const float q = qs[r * D + c];
                    qk[r * D + c] = q * __half2float(p.kscale[si]);
                    part = fmaf(q, __half2float(p.kzero[si]), part);
                }
#pragma unroll
                for (int off = 16; off > 0; off >>= 1) part += __shfl_xor_sync(0xffffffffu, part, off);
                bias[r] = part;
            }
            group_loaded = grp;
        }
        __syncwarp();  // qk written; the previous tile's readers of vcodes_s / vsz_s are done
#pragma unroll
        for (int u = 0; u < S::VU; ++u) reinterpret_cast<uint4 *>(vcodes_s)[lane + 32 * u] = vr[u];
        for (int i = lane; i < 32 * VG; i += 32) {
            const int t = i / VG, gi = i % VG;
            __half2 v = __floats2half2_rn(0.0f, 0.0f);
            if (t0 + t < p.N) {
                const int64_t si = (pair * p.N + t0 + t) * VG + gi;
                v = __halves2half2(p.vscale[si], p.vzero[si]);
            }
            vsz_s[t * MAXVG + gi] = v;
        }
        __syncwarp();

        // Scores, lane = token.
        float acc[R];
#pragma unroll
        for (int r = 0; r < R; ++r) acc[r] = bias[r];
        if (s_slot < 0) {
#pragma unroll
            for (int c4 = 0; c4 < D / 4; ++c4) {
                float f[4];
#pragma unroll
                for (int i = 0; i < 4; ++i) {
                    const int c = 4 * c4 + i;
                    f[i] = code_to_float((kw[c / S::PER_WORD] >> ((c % S::PER_WORD) * BITS)) & MASK);
                }
#pragma unroll
                for (int r = 0; r < R; ++r) {
                    const float4 qv = reinterpret_cast<const float4 *>(qk + r * D)[c4];
                    acc[r] = fmaf(qv.x, f[0], fmaf(qv.y, f[1], fmaf(qv.z, f[2], fmaf(qv.w, f[3], acc[r]))));
                }
            }
        } else {  // a salient token: its fp16 row, unscaled query
            const __half *row = p.sk + (pair * p.S + s_slot) * D;
#pragma unroll
            for (int r = 0; r < R; ++r) acc[r] = 0.0f;
            for (int c = 0; c < D; ++c) {
                const float k = __half2float(row[c]);
#pragma unroll
                for (int r = 0; r < R; ++r) acc[r] = fmaf(qs[r * D + c], k, acc[r]);
            }
        }
        // Online softmax per row.
        float pr[R];
#pragma unroll
        for (int r = 0; r < R; ++r) {
            const float sc = (n < n_end && n < vis[r]) ? acc[r] : -INFINITY;
            float mx = sc;
#pragma unroll
            for (int off = 16; off > 0; off >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, off));
            const float m_new = fmaxf(m[r], mx);
            float alpha = 1.0f;
            pr[r] = 0.0f;
            if (m_new != -INFINITY) {
                pr[r] = exp2f(sc - m_new);
                alpha = exp2f(m[r] - m_new);
            }
            float sum = pr[r];
#pragma unroll
            for (int off = 16; off > 0; off >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, off);
            l[r] = fmaf(l[r], alpha, sum);
            m[r] = m_new;
#pragma unroll
            for (int j = 0; j < S::CPL; ++j) o[r][j] *= alpha;
        }
        // P V, lane = channels my_c0 .. my_c0 + CPL - 1.
        const int tmax = (int)min((int64_t)32, n_end - t0);
        for (int t = 0; t < tmax; ++t) {
            const int32_t st = __shfl_sync(0xffffffffu, s_slot, t);
            float vx[S::CPL];
            if (st < 0) {
                const __half2 sz = vsz_s[t * MAXVG + my_g];
                const float vs = __low2float(sz), vz = __high2float(sz);
                const int bit0 = my_c0 * BITS;  // first bit of this lane's codes in the row
                uint32_t bits_;
                if constexpr (S::CPL * BITS >= 8) {
                    constexpr int NB = S::CPL * BITS / 8;  // 1, 2 or 4 bytes
                    const unsigned char *src = vcodes_s + t * S::RB + bit0 / 8;
                    if constexpr (NB == 4) bits_ = *reinterpret_cast<const uint32_t *>(src);
                    else if constexpr (NB == 2) bits_ = *reinterpret_cast<const uint16_t *>(src);
                    else bits_ = *src;
                } else {  // 4 bits of codes: half a byte
                    bits_ = (uint32_t)(vcodes_s[t * S::RB + bit0 / 8] >> (bit0 % 8));
                }
#pragma unroll
                for (int j = 0; j < S::CPL; ++j) vx[j] = fmaf(code_to_float((bits_ >> (j * BITS)) & MASK), vs, vz);
            } else {
                const __half *row = p.sv + (pair * p.S + st) * D + my_c0;
#pragma unroll
                for (int j = 0; j < S::CPL; ++j) vx[j] = __half2float(row[j]);
            }
#pragma unroll
            for (int r = 0; r < R; ++r) {
                const float pt = __shfl_sync(0xffffffffu, pr[r], t);
#pragma unroll
                for (int j = 0; j < S::CPL; ++j) o[r][j] = fmaf(pt, vx[j], o[r][j]);
            }
        }
    }

    // Merge the four warps: [warp][R][D] outputs and [warp][R] (max, sum).
    __syncthreads();
    float *mo = reinterpret_cast<float *>(smem_raw + sizeof(float) * R * D);  // [4][R][D]
    float *mml = mo + 4 * R * D;                                             // [4][R][2]
#pragma unroll
    for (int r = 0; r < R; ++r) {
#pragma unroll
        for (int j = 0; j < S::CPL; ++j) mo[(warp * R + r) * D + my_c0 + j] = o[r][j];
        if (lane == 0) mml[(warp * R + r) * 2] = m[r], mml[(warp * R + r) * 2 + 1] = l[r];
    }
    __syncthreads();
    for (int i = tid; i < R * D; i += NT) {
        const int r = i / D, c = i % D;
        if (r >= p.rows) continue;
        float M = -INFINITY;
#pragma unroll
        for (int w = 0; w < 4; ++w) M = fmaxf(M, mml[(w * R + r) * 2]);
        float L = 0.0f, O = 0.0f;
#pragma unroll
        for (int w = 0; w < 4; ++w) {
            const float lw = mml[(w * R + r) * 2 + 1];
            if (lw == 0.0f) continue;
            const float wt = exp2f(mml[(w * R + r) * 2] - M);
            L = fmaf(wt, lw, L);
            O = fmaf(wt, mo[(w * R + r) * D + c], O);
        }
        const int64_t h = kvh * p.qgroup + r / p.nq, qi = r % p.nq;
        const int64_t row = (b * p.H + h) * p.nq + qi;
        if (p.splits == 1) {
            dstore(p.out, b * p.out.s[0] + h * p.out.s[1] + qi * p.out.s[2] + c * p.out.s[3], O / L);
        } else {
            p.ws_o[(row * p.splits + split) * D + c] = O;
            if (c == 0) {
                p.ws_ml[(row * p.splits + split) * 2] = M;
                p.ws_ml[(row * p.splits + split) * 2 + 1] = L;
            }
        }
    }
}

// ---- pipelined warp kernel (the default for up to 8 rows per kv head) ------------------------
//
// The warp kernel above waits for every tile's loads before computing it, and with tiles dealt
// round-robin to warps it re-folds the K scale into the query on every tile. Measured on the
// H100 it reached only ~20% of copy bandwidth. Here each warp walks a contiguous run of tiles
// (one fold per token group) and copies tile i+1's K rows and V codes into a second shared
// buffer with cp.async while it computes tile i; the few small per-token values (salient slot,
// V scale/zero, the next group's K scale/zero) are prefetched one tile ahead in registers.

template <int BITS, int D, int R>
struct pipe_shape {
    static constexpr int RB = D * BITS / 8;             // bytes per token row
    static constexpr int KRS = RB + 16;                 // padded K row stride in shared memory
    static constexpr int KU = RB / 16;                  // 16-byte units per K row
    static constexpr int KW = RB / 4;                   // 32-bit words per K row
    static constexpr int VU = 32 * RB / 16 / 32;        // 16-byte V units per lane per tile
    static constexpr int PER_WORD = 32 / BITS;
    static constexpr int CPL = D / 32;                  // V channels per lane
    static constexpr int KCL = D / 32;                  // K channels per lane in the fold
    static constexpr int STAGE = 32 * KRS + 32 * RB;    // bytes of one stage (K rows, V codes)
    static constexpr int WARP_BYTES = 2 * STAGE + 4 * R * D + 32 * MAXVG * 4 + 32 * R * 4;
};

template <int BITS, int D, int R>
size_t pipe_smem_bytes() {
    using S = pipe_shape<BITS, D, R>;
    const size_t loop = sizeof(float) * R * D + 4 * (size_t)S::WARP_BYTES;
    const size_t merge = sizeof(float) * R * D + 4 * sizeof(float) * R * (D + 2);
    return loop > merge ? loop : merge;
}

__device__ __forceinline__ void cp_async16(void *smem, const void *gmem, bool valid) {
    const unsigned dst = (unsigned)__cvta_generic_to_shared(smem);
    const int src_size = valid ? 16 : 0;  // 0: the 16 bytes are zero-filled, nothing is read
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(gmem), "r"(src_size));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
__device__ __forceinline__ void cp_async_wait_one() { asm volatile("cp.async.wait_group 1;\n" ::: "memory"); }

template <int BITS, int D, int R>
__global__ void __launch_bounds__(NT, R == 4 ? 4 : 2) decode_pipe_kernel(decode_params p) {
    using S = pipe_shape<BITS, D, R>;
    constexpr uint32_t MASK = (1u << BITS) - 1u;
    extern __shared__ __align__(16) unsigned char smem_raw[];
    float *qs = reinterpret_cast<float *>(smem_raw);  // [R][D]
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    unsigned char *wbase = smem_raw + sizeof(float) * R * D + (size_t)warp * S::WARP_BYTES;
    unsigned char *stage0 = wbase;                                                   // 2 x [K rows | V codes]
    float *qk = reinterpret_cast<float *>(wbase + 2 * S::STAGE);                     // [R][D]
    __half2 *vsz_s = reinterpret_cast<__half2 *>(wbase + 2 * S::STAGE + 4 * R * D);  // [32][MAXVG]
    float *p_s = reinterpret_cast<float *>(wbase + 2 * S::STAGE + 4 * R * D + 32 * MAXVG * 4);  // [32][R]

    const int split = blockIdx.x;
    const int64_t kvh = blockIdx.y, b = blockIdx.z, pair = b * p.Hkv + kvh;
    const int64_t n_begin = (int64_t)split * p.chunk, n_end = min(p.N, n_begin + p.chunk);
    const int VG = (D + p.group - 1) / p.group;

    for (int i = tid; i < R * D; i += NT) {
        const int r = i / D, c = i % D;
        float x = 0.0f;
        if (r < p.rows) {
            const int64_t h = kvh * p.qgroup + r / p.nq, qi = r % p.nq;
            x = dload(p.q, b * p.q.s[0] + h * p.q.s[1] + qi * p.q.s[2] + c * p.q.s[3]) * p.qscale;
        }
        qs[i] = x;
    }
    __syncthreads();

    // This warp's contiguous run of tiles.
    const int64_t tiles = (n_end - n_begin + 31) / 32, per_warp = (tiles + 3) / 4;
    const int64_t tile0 = min(tiles, per_warp * warp), tile1 = min(tiles, per_warp * (warp + 1));

    const uint8_t *kbase = p.kcodes + pair * p.N * S::RB;
    const uint8_t *vbase = p.vcodes + pair * p.N * S::RB;
    const int32_t *slot = p.slot + b * p.N;

    auto issue_copies = [&](int64_t t0, int stage) {
        unsigned char *st = stage0 + stage * S::STAGE;
        const int64_t n = t0 + lane;
#pragma unroll
        for (int u = 0; u < S::KU; ++u)
            cp_async16(st + lane * S::KRS + 16 * u, n < p.N ? kbase + n * S::RB + 16 * u : kbase, n < p.N);
#pragma unroll
        for (int u = 0; u < S::VU; ++u) {
            const int unit = lane + 32 * u;
            const bool ok = t0 + unit * 16 / S::RB < p.N;
            cp_async16(st + 32 * S::KRS + 16 * unit, ok ? vbase + t0 * S::RB + 16 * unit : vbase, ok);
        }
        cp_async_commit();
    };
    // Small per-token values, one tile ahead in registers.
    struct small_t {
        int32_t slot;
        __half2 vsz[MAXVG];   // (scale, zero) of token t0 + lane, per V group
        __half2 ksz[S::KCL];  // (scale, zero) of channels lane + 32 j for the tile's token group
    };
    auto load_small = [&](int64_t t0) {
        small_t v;
        const int64_t n = t0 + lane;
        v.slot = -1;
#pragma unroll
        for (int gi = 0; gi < MAXVG; ++gi) v.vsz[gi] = __floats2half2_rn(0.0f, 0.0f);
        if (n < p.N) {
            const int32_t raw = __ldg(slot + n);
            v.slot = raw < p.S ? raw : -1;  // a corrupt slot map reads no foreign memory
#pragma unroll
            for (int gi = 0; gi < MAXVG; ++gi)
                if (gi < VG) {
                    const int64_t si = (pair * p.N + n) * VG + gi;
                    v.vsz[gi] = __halves2half2(p.vscale[si], p.vzero[si]);
                }
        }
        const int64_t grp = t0 / p.group;
#pragma unroll
        for (int j = 0; j < S::KCL; ++j) {
            const int64_t si = (pair * p.KG + grp) * D + lane + 32 * j;
            v.ksz[j] = __halves2half2(p.kscale[si], p.kzero[si]);
        }
        return v;
    };

    float m[R], l[R], o[R][S::CPL], bias[R];
#pragma unroll
    for (int r = 0; r < R; ++r) {
        m[r] = -INFINITY, l[r] = 0.0f, bias[r] = 0.0f;
#pragma unroll
        for (int j = 0; j < S::CPL; ++j) o[r][j] = 0.0f;
    }
    int vis[R];
#pragma unroll
    for (int r = 0; r < R; ++r) vis[r] = (int)(p.causal ? p.N - p.nq + r % p.nq + 1 : p.N);
    const int my_c0 = lane * S::CPL;
    const int my_g = my_c0 / p.group;
    int64_t group_loaded = -1;

    small_t next{};
    if (tile0 < tile1) {
        issue_copies(n_begin + 32 * tile0, 0);
        next = load_small(n_begin + 32 * tile0);
    }
    for (int64_t ti = tile0; ti < tile1; ++ti) {
        const int64_t t0 = n_begin + 32 * ti, n = t0 + lane;
        const int stage = (int)((ti - tile0) & 1);
        const small_t cur = next;
        if (ti + 1 < tile1) {
            issue_copies(t0 + 32, stage ^ 1);
            next = load_small(t0 + 32);
        } else {
            cp_async_commit();  // an empty group keeps wait_group 1 meaning "this tile's copies"
        }
        const int64_t grp = t0 / p.group;
        if (grp != group_loaded) {  // fold the group's K scale into the query, its zero into a bias
#pragma unroll
            for (int r = 0; r < R; ++r) {
                float part = 0.0f;
#pragma unroll
                for (int j = 0; j < S::KCL; ++j) {
                    const int c = lane + 32 * j;
                    const float q = qs[r * D + c];
                    qk[r * D + c] = q * __low2float(cur.ksz[j]);
                    part = fmaf(q, __high2float(cur.ksz[j]), part);
                }
#pragma unroll
                for (int off = 16; off > 0; off >>= 1) part += __shfl_xor_sync(0xffffffffu, part, off);
                bias[r] = part;
            }
            group_loaded = grp;
        }
#pragma unroll
        for (int gi = 0; gi < MAXVG; ++gi)
            if (gi < VG) vsz_s[lane * MAXVG + gi] = cur.vsz[gi];
        cp_async_wait_one();
        __syncwarp();  // this tile's copies, qk and vsz_s visible to the whole warp

        const unsigned char *st = stage0 + stage * S::STAGE;
        const unsigned salient = __ballot_sync(0xffffffffu, cur.slot >= 0);
        // Scores, lane = token.
        float acc[R];
#pragma unroll
        for (int r = 0; r < R; ++r) acc[r] = bias[r];
        if (cur.slot < 0) {
            uint32_t kw[S::KW];
#pragma unroll
            for (int u = 0; u < S::KU; ++u) {
                const uint4 x = *reinterpret_cast<const uint4 *>(st + lane * S::KRS + 16 * u);
                kw[4 * u] = x.x, kw[4 * u + 1] = x.y, kw[4 * u + 2] = x.z, kw[4 * u + 3] = x.w;
            }
#pragma unroll
            for (int c4 = 0; c4 < D / 4; ++c4) {
                float f[4];
#pragma unroll
                for (int i = 0; i < 4; ++i) {
                    const int c = 4 * c4 + i;
                    f[i] = code_to_float((kw[c / S::PER_WORD] >> ((c % S::PER_WORD) * BITS)) & MASK);
                }
#pragma unroll
                for (int r = 0; r < R; ++r) {
                    const float4 qv = reinterpret_cast<const float4 *>(qk + r * D)[c4];
                    acc[r] = fmaf(qv.x, f[0], fmaf(qv.y, f[1], fmaf(qv.z, f[2], fmaf(qv.w, f[3], acc[r]))));
                }
            }
        } else {  // a salient token: its fp16 row against the unscaled query
            const __half *row = p.sk + (pair * p.S + cur.slot) * D;
#pragma unroll
            for (int r = 0; r < R; ++r) acc[r] = 0.0f;
            for (int c = 0; c < D; ++c) {
                const float k = __half2float(row[c]);
#pragma unroll
                for (int r = 0; r < R; ++r) acc[r] = fmaf(qs[r * D + c], k, acc[r]);
            }
        }
        // Online softmax per row; p to shared memory for the P V step.
#pragma unroll
        for (int r = 0; r < R; ++r) {
            const float sc = (n < n_end && n < vis[r]) ? acc[r] : -INFINITY;
            float mx = sc;
#pragma unroll
            for (int off = 16; off > 0; off >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, off));
            const float m_new = fmaxf(m[r], mx);
            float alpha = 1.0f, pr = 0.0f;
            if (m_new != -INFINITY) {
                pr = exp2f(sc - m_new);
                alpha = exp2f(m[r] - m_new);
            }
            float sum = pr;
#pragma unroll
            for (int off = 16; off > 0; off >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, off);
            l[r] = fmaf(l[r], alpha, sum);
            m[r] = m_new;
            p_s[lane * R + r] = pr;
#pragma unroll
            for (int j = 0; j < S::CPL; ++j) o[r][j] *= alpha;
        }
        __syncwarp();
        // P V, lane = channels my_c0 ..; tokens past the end have p = 0 and zero-filled codes.
        const unsigned char *vst = st + 32 * S::KRS;
        const int bit0 = my_c0 * BITS;
#pragma unroll 8
        for (int t = 0; t < 32; ++t) {
            float vx[S::CPL];
            if (!((salient >> t) & 1u)) {
                const __half2 sz = vsz_s[t * MAXVG + my_g];
                const float vs = __low2float(sz), vz = __high2float(sz);
                uint32_t bits_;
                if constexpr (S::CPL * BITS >= 8) {
                    constexpr int NB = S::CPL * BITS / 8;
                    const unsigned char *src = vst + t * S::RB + bit0 / 8;
                    if constexpr (NB == 4) bits_ = *reinterpret_cast<const uint32_t *>(src);
                    else if constexpr (NB == 2) bits_ = *reinterpret_cast<const uint16_t *>(src);
                    else bits_ = *src;
                } else {
                    bits_ = (uint32_t)(vst[t * S::RB + bit0 / 8] >> (bit0 % 8));
                }
#pragma unroll
                for (int j = 0; j < S::CPL; ++j) vx[j] = fmaf(code_to_float((bits_ >> (j * BITS)) & MASK), vs, vz);
            } else {
                const int32_t st_slot = __shfl_sync(0xffffffffu, cur.slot, t);
                const __half *row = p.sv + (pair * p.S + st_slot) * D + my_c0;
#pragma unroll
                for (int j = 0; j < S::CPL; ++j) vx[j] = __half2float(row[j]);
            }
            float pt[R];
            if constexpr (R % 4 == 0) {
#pragma unroll
                for (int r4 = 0; r4 < R / 4; ++r4) {
                    const float4 x = reinterpret_cast<const float4 *>(p_s + t * R)[r4];
                    pt[4 * r4] = x.x, pt[4 * r4 + 1] = x.y, pt[4 * r4 + 2] = x.z, pt[4 * r4 + 3] = x.w;
                }
            } else {
#pragma unroll
                for (int r = 0; r < R; ++r) pt[r] = p_s[t * R + r];
            }
#pragma unroll
            for (int r = 0; r < R; ++r)
#pragma unroll
                for (int j = 0; j < S::CPL; ++j) o[r][j] = fmaf(pt[r], vx[j], o[r][j]);
        }
        __syncwarp();  // done with this stage, qk, vsz_s and p_s before the next tile reuses them
    }

    // Merge the four warps: [warp][R][D] outputs and [warp][R] (max, sum).
    __syncthreads();
    float *mo = reinterpret_cast<float *>(smem_raw + sizeof(float) * R * D);  // [4][R][D]
    float *mml = mo + 4 * R * D;                                             // [4][R][2]
#pragma unroll
    for (int r = 0; r < R; ++r) {
#pragma unroll
        for (int j = 0; j < S::CPL; ++j) mo[(warp * R + r) * D + my_c0 + j] = o[r][j];
        if (lane == 0) mml[(warp * R + r) * 2] = m[r], mml[(warp * R + r) * 2 + 1] = l[r];
    }
    __syncthreads();
    for (int i = tid; i < R * D; i += NT) {
        const int r = i / D, c = i % D;
        if (r >= p.rows) continue;
        float M = -INFINITY;
#pragma unroll
        for (int w = 0; w < 4; ++w) M = fmaxf(M, mml[(w * R + r) * 2]);
        float L = 0.0f, O = 0.0f;
#pragma unroll
        for (int w = 0; w < 4; ++w) {
            const float lw = mml[(w * R + r) * 2 + 1];
            if (lw == 0.0f) continue;
            const float wt = exp2f(mml[(w * R + r) * 2] - M);
            L = fmaf(wt, lw, L);
            O = fmaf(wt, mo[(w * R + r) * D + c], O);
        }
        const int64_t h = kvh * p.qgroup + r / p.nq, qi = r % p.nq;
        const int64_t row = (b * p.H + h) * p.nq + qi;
        if (p.splits == 1) {
            dstore(p.out, b * p.out.s[0] + h * p.out.s[1] + qi * p.out.s[2] + c * p.out.s[3], O / L);
        } else {
            p.ws_o[(row * p.splits + split) * D + c] = O;
            if (c == 0) {
                p.ws_ml[(row * p.splits + split) * 2] = M;
                p.ws_ml[(row * p.splits + split) * 2 + 1] = L;
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

template <int BITS, int D, int RT>
heed_status launch(decode_params p, int64_t B, int64_t Hkv) {
    const size_t smem = smem_bytes<BITS, D, RT>();
    HEED_CUDA_CHECK(cudaFuncSetAttribute(decode_kernel<BITS, D, RT>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
    const int row_tiles = (p.rows + RT - 1) / RT;
    dim3 grid((unsigned)p.splits, (unsigned)(Hkv * row_tiles), (unsigned)B);
    decode_kernel<BITS, D, RT><<<grid, NT, smem>>>(p);
    HEED_CUDA_CHECK_LAUNCH("decode_kernel");
    if (p.splits > 1) {
        combine_kernel<D><<<(unsigned)(B * p.H * p.nq), D>>>(p);
        HEED_CUDA_CHECK_LAUNCH("combine_kernel");
    }
    return HEED_OK;
}

template <int BITS, int D>
heed_status launch_rows(const decode_params &p, int64_t B, int64_t Hkv) {
    return p.rows <= 8 ? launch<BITS, D, 8>(p, B, Hkv) : launch<BITS, D, 32>(p, B, Hkv);
}

template <int D>
heed_status launch_bits(const decode_params &p, int bits, int64_t B, int64_t Hkv) {
    return bits == 8 ? launch_rows<8, D>(p, B, Hkv) : bits == 4 ? launch_rows<4, D>(p, B, Hkv) : launch_rows<2, D>(p, B, Hkv);
}

template <int BITS, int D, int R>
heed_status launch_warp(decode_params p, int64_t B, int64_t Hkv) {
    const size_t smem = warp_smem_bytes<BITS, D, R>();
    HEED_CUDA_CHECK(cudaFuncSetAttribute(decode_warp_kernel<BITS, D, R>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
    decode_warp_kernel<BITS, D, R><<<dim3((unsigned)p.splits, (unsigned)Hkv, (unsigned)B), NT, smem>>>(p);
    HEED_CUDA_CHECK_LAUNCH("decode_warp_kernel");
    if (p.splits > 1) {
        combine_kernel<D><<<(unsigned)(B * p.H * p.nq), D>>>(p);
        HEED_CUDA_CHECK_LAUNCH("combine_kernel");
    }
    return HEED_OK;
}

template <int D>
heed_status launch_warp_bits(const decode_params &p, int bits, int64_t B, int64_t Hkv) {
    if (p.rows <= 4)
        return bits == 8 ? launch_warp<8, D, 4>(p, B, Hkv) : bits == 4 ? launch_warp<4, D, 4>(p, B, Hkv) : launch_warp<2, D, 4>(p, B, Hkv);
    return bits == 8 ? launch_warp<8, D, 8>(p, B, Hkv) : bits == 4 ? launch_warp<4, D, 8>(p, B, Hkv) : launch_warp<2, D, 8>(p, B, Hkv);
}

template <int BITS, int D, int R>
heed_status launch_pipe(decode_params p, int64_t B, int64_t Hkv) {
    const size_t smem = pipe_smem_bytes<BITS, D, R>();
    HEED_CUDA_CHECK(cudaFuncSetAttribute(decode_pipe_kernel<BITS, D, R>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
    decode_pipe_kernel<BITS, D, R><<<dim3((unsigned)p.splits, (unsigned)Hkv, (unsigned)B), NT, smem>>>(p);
    HEED_CUDA_CHECK_LAUNCH("decode_pipe_kernel");
    if (p.splits > 1) {
        combine_kernel<D><<<(unsigned)(B * p.H * p.nq), D>>>(p);
        HEED_CUDA_CHECK_LAUNCH("combine_kernel");
    }
    return HEED_OK;
}

template <int D>
heed_status launch_pipe_bits(const decode_params &p, int bits, int64_t B, int64_t Hkv) {
    if (p.rows <= 4)
        return bits == 8 ? launch_pipe<8, D, 4>(p, B, Hkv) : bits == 4 ? launch_pipe<4, D, 4>(p, B, Hkv) : launch_pipe<2, D, 4>(p, B, Hkv);
    return bits == 8 ? launch_pipe<8, D, 8>(p, B, Hkv) : bits == 4 ? launch_pipe<4, D, 8>(p, B, Hkv) : launch_pipe<2, D, 8>(p, B, Hkv);
}

// Which kernel: "pipe" (default) or "warp" for up to 8 rows per kv head, "smem" for any rows
// (HEED_QDECODE_KERNEL; the others are kept to compare against and as fallbacks).
enum class decode_kernel_kind { pipe, warp, smem };
decode_kernel_kind pick_kernel(int rows) {
    if (rows > 8) return decode_kernel_kind::smem;
    const char *env = std::getenv("HEED_QDECODE_KERNEL");
    if (env && std::strcmp(env, "smem") == 0) return decode_kernel_kind::smem;
    if (env && std::strcmp(env, "warp") == 0) return decode_kernel_kind::warp;
    return decode_kernel_kind::pipe;
}

}  // namespace

heed_status quant_decode_cuda(const decode_args &a, int device) {
    device_scope scope(device);
    HEED_CUDA_CHECK(scope.err);
    const quant_dims &D = a.dims;
    const heed_quant_kv &c = *a.cache;
    if (reinterpret_cast<uintptr_t>(c.k_codes.data) % 16 != 0 || reinterpret_cast<uintptr_t>(c.v_codes.data) % 16 != 0)
        return fail(HEED_ERR_UNSUPPORTED, "cache.k_codes/v_codes: the CUDA decode needs 16-byte aligned code buffers");
    if (D.B > 65535 || D.Hkv * 4 > 65535) return fail(HEED_ERR_UNSUPPORTED, "q: too many batch items or heads for the CUDA decode");
    decode_params p{};
    p.q = make_view(a.q), p.out = make_view(a.out);
    p.kcodes = static_cast<const uint8_t *>(c.k_codes.data), p.vcodes = static_cast<const uint8_t *>(c.v_codes.data);
    p.kscale = static_cast<const __half *>(c.k_scale.data), p.kzero = static_cast<const __half *>(c.k_zero.data);
    p.vscale = static_cast<const __half *>(c.v_scale.data), p.vzero = static_cast<const __half *>(c.v_zero.data);
    p.sk = static_cast<const __half *>(c.salient_k.data), p.sv = static_cast<const __half *>(c.salient_v.data);
    p.slot = static_cast<const int32_t *>(c.salient_slot.data);
    p.H = a.H, p.Hkv = D.Hkv, p.N = D.N, p.S = D.S, p.KG = D.k_groups(), p.nq = a.nq;
    p.group = D.group, p.qgroup = (int)(a.H / D.Hkv), p.rows = (int)(p.qgroup * a.nq), p.causal = a.causal;
    p.qscale = a.scale * kLog2e;
    const decode_kernel_kind kind = pick_kernel(p.rows);
    const int RT = p.rows <= 8 ? 8 : 32;
    const int64_t row_tiles = kind != decode_kernel_kind::smem ? 1 : (p.rows + RT - 1) / RT;
    if (D.Hkv * row_tiles > 65535) return fail(HEED_ERR_UNSUPPORTED, "q: too many query rows per kv head for the CUDA decode");

    // Splits: enough blocks to fill the device several times over, each at least one tile.
    const int64_t tiles = (D.N + TT - 1) / TT;
    int64_t splits = a.num_splits;
    if (splits <= 0) {
        int sms = 0;
        HEED_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
        const int64_t base = D.B * D.Hkv * row_tiles;
        if (kind == decode_kernel_kind::pipe) {
            // One full wave: as many blocks as fit at once (4 per SM for <= 4 rows, else 2), not
            // more, so no second, mostly empty wave.
            const int64_t resident = (int64_t)sms * (p.rows <= 4 ? 4 : 2);
            splits = std::max<int64_t>(1, resident / base);
        } else {
            splits = (4 * (int64_t)sms + base - 1) / base;
        }
    }
    splits = std::max<int64_t>(1, std::min(splits, tiles));
    p.chunk = ((tiles + splits - 1) / splits) * TT;  // a multiple of the tile, so tiles align with groups
    p.splits = (int)((D.N + p.chunk - 1) / p.chunk);

    void *ws = nullptr;
    if (p.splits > 1) {
        const int64_t rows_total = D.B * a.H * a.nq;
        const size_t bytes = (size_t)rows_total * p.splits * (D.d + 2) * sizeof(float);
        HEED_CUDA_CHECK(cudaMallocAsync(&ws, bytes, 0));
        p.ws_o = static_cast<float *>(ws);
        p.ws_ml = p.ws_o + rows_total * p.splits * D.d;
    }
    heed_status s;
    if (kind == decode_kernel_kind::pipe)
        s = D.d == 64 ? launch_pipe_bits<64>(p, D.bits, D.B, D.Hkv) : launch_pipe_bits<128>(p, D.bits, D.B, D.Hkv);
    else if (kind == decode_kernel_kind::warp)
        s = D.d == 64 ? launch_warp_bits<64>(p, D.bits, D.B, D.Hkv) : launch_warp_bits<128>(p, D.bits, D.B, D.Hkv);
    else
        s = D.d == 64 ? launch_bits<64>(p, D.bits, D.B, D.Hkv) : launch_bits<128>(p, D.bits, D.B, D.Hkv);
    if (ws) {
        cudaError_t err = cudaFreeAsync(ws, 0);
        if (s == HEED_OK && err != cudaSuccess) return cuda_status(err, "cudaFreeAsync");
    }
    if (s != HEED_OK) return s;
    return ok();
}

}  // namespace heed::linear_kv
