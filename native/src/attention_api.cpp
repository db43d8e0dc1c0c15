// attention_api.cpp - the C entry points of heed/attention.h: validate every argument, find
// where the tensors live, and run the CPU or the CUDA kernel.
#include <cmath>

#include "attention_args.hpp"
#include "cpu/parallel_for.hpp"
#include "error.hpp"
#include "heed/attention.h"
#include "tensor_view.hpp"

#ifdef HEED_WITH_CUDA
#include "cuda/attention_cuda.hpp"
#endif

namespace heed {
namespace cpu {
cpu_settings &settings() {
    static cpu_settings s;
    return s;
}
}  // namespace cpu

namespace {

constexpr int64_t kMaxElements = int64_t(1) << 46;  // keeps every offset product far from overflow

heed_status check_size(const heed_tensor *t, const char *name) {
    if (t == nullptr) return HEED_OK;
    if (element_count(*t) > kMaxElements) return fail(HEED_ERR_INVALID_ARGUMENT, "%s: too many elements", name);
    int64_t reach = 0;
    for (int d = 0; d < t->ndim; ++d) {
        if (stride_of(*t, d) > kMaxElements) return fail(HEED_ERR_INVALID_ARGUMENT, "%s: strides[%d] is too large", name, d);
        reach += (t->shape[d] - 1) * stride_of(*t, d);
    }
    return reach > kMaxElements ? fail(HEED_ERR_INVALID_ARGUMENT, "%s: strides reach too far", name) : HEED_OK;
}

heed_status resolve_scale(float scale, int64_t d, float *out) {
    if (scale == 0.0f) {
        *out = (float)(1.0 / std::sqrt((double)d));
        return HEED_OK;
    }
    if (!std::isfinite(scale) || scale < 0.0f)
        return fail(HEED_ERR_INVALID_ARGUMENT, "scale: must be finite and positive (or 0 for 1/sqrt(d)), got %g", (double)scale);
    *out = scale;
    return HEED_OK;
}

heed_status check_heads(int64_t H, int64_t Hkv, const char *q, const char *k) {
    if (H % Hkv != 0)
        return fail(HEED_ERR_INVALID_ARGUMENT, "%s has %lld heads, not a multiple of the %lld heads of %s (GQA needs H %% Hkv == 0)",
                    q, (long long)H, (long long)Hkv, k);
    return HEED_OK;
}

heed_status dims_match(const heed_tensor *t, const char *name, std::initializer_list<int64_t> dims) {
    int i = 0;
    for (int64_t want : dims) {
        if (want >= 0 && t->shape[i] != want)
            return fail(HEED_ERR_INVALID_ARGUMENT, "%s: shape[%d] = %lld, expected %lld", name, i, (long long)t->shape[i], (long long)want);
        ++i;
    }
    return HEED_OK;
}

#define HEED_TRY(expr)                       \
    do {                                     \
        heed_status heed_s_ = (expr);        \
        if (heed_s_ != HEED_OK) return heed_s_; \
    } while (0)

const std::initializer_list<int32_t> kFloats = {HEED_F32, HEED_F16, HEED_BF16};

// Q, K, V, O and LSE of flash and block-sparse attention.
heed_status check_attention(const heed_tensor *q, const heed_tensor *k, const heed_tensor *v, float scale,
                            const heed_tensor *o, const heed_tensor *lse, attention_args *a) {
    HEED_TRY(check_tensor(q, "q", 4, kFloats));
    HEED_TRY(check_tensor(k, "k", 4, kFloats));
    HEED_TRY(check_tensor(v, "v", 4, kFloats));
    HEED_TRY(check_tensor(o, "o", 4, kFloats));
    if (lse) HEED_TRY(check_tensor(lse, "lse", 3, {HEED_F32}));
    if (k->dtype != q->dtype || v->dtype != q->dtype || o->dtype != q->dtype)
        return fail(HEED_ERR_INVALID_ARGUMENT, "k, v and o must have q's dtype %s (got k %s, v %s, o %s)", dtype_name(q->dtype),
                    dtype_name(k->dtype), dtype_name(v->dtype), dtype_name(o->dtype));
    a->B = q->shape[0];
    a->H = q->shape[1];
    a->Nq = q->shape[2];
    a->d = q->shape[3];
    a->Hkv = k->shape[1];
    a->Nk = k->shape[2];
    HEED_TRY(dims_match(k, "k", {a->B, -1, -1, a->d}));
    HEED_TRY(dims_match(v, "v", {a->B, a->Hkv, a->Nk, a->d}));
    HEED_TRY(dims_match(o, "o", {a->B, a->H, a->Nq, a->d}));
    if (lse) HEED_TRY(dims_match(lse, "lse", {a->B, a->H, a->Nq}));
    HEED_TRY(check_heads(a->H, a->Hkv, "q", "k"));
    for (auto [t, n] : {std::pair{q, "q"}, {k, "k"}, {v, "v"}, {o, "o"}, {lse, "lse"}}) HEED_TRY(check_size(t, n));
    HEED_TRY(resolve_scale(scale, a->d, &a->scale));
    a->q = tview(q);
    a->k = tview(k);
    a->v = tview(v);
    a->o = tview(o);
    a->lse = tview(lse);
    return HEED_OK;
}

heed_status check_block(int32_t block) {
    if (block != 64 && block != 128) return fail(HEED_ERR_INVALID_ARGUMENT, "block: must be 64 or 128, got %d", block);
    return HEED_OK;
}

}  // namespace
}  // namespace heed

using namespace heed;

extern "C" {

heed_status heed_attention_cpu_config(int32_t reference, int32_t threads) {
    if (threads < 0) return fail(HEED_ERR_INVALID_ARGUMENT, "threads: must be >= 0 (0 = all cores), got %d", threads);
    cpu::settings().reference.store(reference != 0);
    cpu::settings().threads.store(threads);
    return ok();
}

heed_status heed_attention_aggregate(const heed_tensor *q, const heed_tensor *q_pos, const heed_tensor *k,
                                     const heed_tensor *k_pos, float scale, int32_t causal, const heed_tensor *out,
                                     const heed_tensor *out_per_head) {
    HEED_GUARD_BEGIN
    HEED_TRY(check_tensor(q, "q", 3, kFloats));
    HEED_TRY(check_tensor(q_pos, "q_pos", 1, {HEED_I32}));
    HEED_TRY(check_tensor(k, "k", 3, kFloats));
    HEED_TRY(check_tensor(k_pos, "k_pos", 1, {HEED_I32}));
    HEED_TRY(check_tensor(out, "out", 1, {HEED_F32}));
    if (out_per_head) HEED_TRY(check_tensor(out_per_head, "out_per_head", 2, {HEED_F32}));
    if (k->dtype != q->dtype)
        return fail(HEED_ERR_INVALID_ARGUMENT, "k: dtype %s must match q's %s", dtype_name(k->dtype), dtype_name(q->dtype));
    aggregate_args a;
    a.n_q = q->shape[0];
    a.H = q->shape[1];
    a.d = q->shape[2];
    a.n_k = k->shape[0];
    a.Hkv = k->shape[1];
    HEED_TRY(dims_match(k, "k", {-1, -1, a.d}));
    HEED_TRY(dims_match(q_pos, "q_pos", {a.n_q}));
    HEED_TRY(dims_match(k_pos, "k_pos", {a.n_k}));
    HEED_TRY(dims_match(out, "out", {a.n_k}));
    if (out_per_head) HEED_TRY(dims_match(out_per_head, "out_per_head", {a.H, a.n_k}));
    HEED_TRY(check_heads(a.H, a.Hkv, "q", "k"));
    for (auto [t, n] : {std::pair{q, "q"}, {q_pos, "q_pos"}, {k, "k"}, {k_pos, "k_pos"}, {out, "out"}, {out_per_head, "out_per_head"}})
        HEED_TRY(check_size(t, n));
    HEED_TRY(resolve_scale(scale, a.d, &a.scale));
    a.causal = causal != 0;
    a.q = tview(q);
    a.q_pos = tview(q_pos);
    a.k = tview(k);
    a.k_pos = tview(k_pos);
    a.out = tview(out);
    a.out_per_head = tview(out_per_head);
    placement where;
    HEED_TRY(placement_of({q, q_pos, k, k_pos, out, out_per_head}, &where));
    heed_status s;
#ifdef HEED_WITH_CUDA
    if (where.cuda)
        s = cuda::attention_aggregate(a, where.device);
    else
#endif
        s = cpu::attention_aggregate(a);
    return s == HEED_OK ? ok() : s;
    HEED_GUARD_END
}

heed_status heed_flash_attention_forward(const heed_tensor *q, const heed_tensor *k, const heed_tensor *v, float scale,
                                         int32_t causal, const heed_tensor *o, const heed_tensor *lse) {
    HEED_GUARD_BEGIN
    attention_args a;
    HEED_TRY(check_attention(q, k, v, scale, o, lse, &a));
    a.causal = causal != 0;
    a.block = 0;
    placement where;
    HEED_TRY(placement_of({q, k, v, o, lse}, &where));
    heed_status s;
#ifdef HEED_WITH_CUDA
    if (where.cuda)
        s = cuda::attention_forward(a, where.device);
    else
#endif
        s = cpu::attention_forward(a);
    return s == HEED_OK ? ok() : s;
    HEED_GUARD_END
}

heed_status heed_block_sparse_attention_forward(const heed_tensor *q, const heed_tensor *k, const heed_tensor *v,
                                                const heed_tensor *mask, int32_t block, float scale, int32_t causal,
                                                const heed_tensor *o, const heed_tensor *lse) {
    HEED_GUARD_BEGIN
    attention_args a;
    HEED_TRY(check_attention(q, k, v, scale, o, lse, &a));
    HEED_TRY(check_block(block));
    HEED_TRY(check_tensor(mask, "mask", 4, {HEED_U8}));
    HEED_TRY(dims_match(mask, "mask", {a.B, a.H, (a.Nq + block - 1) / block, (a.Nk + block - 1) / block}));
    HEED_TRY(check_size(mask, "mask"));
    a.mask = tview(mask);
    a.block = block;
    a.causal = causal != 0;
    placement where;
    HEED_TRY(placement_of({q, k, v, mask, o, lse}, &where));
    heed_status s;
#ifdef HEED_WITH_CUDA
    if (where.cuda)
        s = cuda::attention_forward(a, where.device);
    else
#endif
        s = cpu::attention_forward(a);
    return s == HEED_OK ? ok() : s;
    HEED_GUARD_END
}

heed_status heed_block_mask_estimate(const heed_tensor *q, const heed_tensor *k, int32_t block, float coverage,
                                     float scale, int32_t causal, const heed_tensor *mask) {
    HEED_GUARD_BEGIN
    HEED_TRY(check_tensor(q, "q", 4, kFloats));
    HEED_TRY(check_tensor(k, "k", 4, kFloats));
    HEED_TRY(check_tensor(mask, "mask", 4, {HEED_U8}));
    if (k->dtype != q->dtype)
        return fail(HEED_ERR_INVALID_ARGUMENT, "k: dtype %s must match q's %s", dtype_name(k->dtype), dtype_name(q->dtype));
    HEED_TRY(check_block(block));
    if (!(coverage > 0.0f && coverage <= 1.0f))
        return fail(HEED_ERR_INVALID_ARGUMENT, "coverage: must be in (0, 1], got %g", (double)coverage);
    mask_estimate_args a;
    a.B = q->shape[0];
    a.H = q->shape[1];
    a.Nq = q->shape[2];
    a.d = q->shape[3];
    a.Hkv = k->shape[1];
    a.Nk = k->shape[2];
    a.block = block;
    HEED_TRY(dims_match(k, "k", {a.B, -1, -1, a.d}));
    HEED_TRY(check_heads(a.H, a.Hkv, "q", "k"));
    HEED_TRY(dims_match(mask, "mask", {a.B, a.H, (a.Nq + block - 1) / block, (a.Nk + block - 1) / block}));
    for (auto [t, n] : {std::pair{q, "q"}, {k, "k"}, {mask, "mask"}}) HEED_TRY(check_size(t, n));
    HEED_TRY(resolve_scale(scale, a.d, &a.scale));
    a.coverage = coverage;
    a.causal = causal != 0;
    a.q = tview(q);
    a.k = tview(k);
    a.mask = tview(mask);
    placement where;
    HEED_TRY(placement_of({q, k, mask}, &where));
    heed_status s;
#ifdef HEED_WITH_CUDA
    if (where.cuda)
        s = cuda::block_mask_estimate(a, where.device);
    else
#endif
        s = cpu::block_mask_estimate(a);
    return s == HEED_OK ? ok() : s;
    HEED_GUARD_END
}

}  // extern "C"
