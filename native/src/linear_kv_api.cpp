// linear_kv_api.cpp - C entry points of heed/linear_attention.h and heed/kv_quant.h: validate
// every argument, find where the call runs, dispatch to the CPU or CUDA kernel.
#include <cmath>

#include "cpu/linear_kv_cpu.hpp"
#include "tensor_view.hpp"
#ifdef HEED_WITH_CUDA
#include "cuda/linear_kv_cuda.hpp"
#endif

namespace heed::linear_kv {
namespace {

const std::initializer_list<int32_t> kFloatTypes = {HEED_F32, HEED_F16, HEED_BF16};

// Largest extent accepted for any dimension; keeps every index product far from overflow.
constexpr int64_t kMaxExtent = (int64_t)1 << 31;
constexpr int64_t kMaxElements = (int64_t)1 << 46;

heed_status check_extents(const heed_tensor &t, const char *name) {
    int64_t n = 1;
    for (int i = 0; i < t.ndim; ++i) {
        if (t.shape[i] > kMaxExtent)
            return fail(HEED_ERR_INVALID_ARGUMENT, "%s: shape[%d] = %lld is too large", name, i, (long long)t.shape[i]);
        n *= t.shape[i];
        if (n > kMaxElements) return fail(HEED_ERR_INVALID_ARGUMENT, "%s: too many elements", name);
    }
    return HEED_OK;
}

// check_tensor plus extents plus an exact shape (-1 in `shape` = any, returned through it).
heed_status check_shaped(const heed_tensor *t, const char *name, std::initializer_list<int32_t> dtypes,
                         std::initializer_list<int64_t> shape, bool allow_empty = false) {
    heed_status s = check_tensor(t, name, (int)shape.size(), dtypes, allow_empty);
    if (s != HEED_OK) return s;
    if ((s = check_extents(*t, name)) != HEED_OK) return s;
    int i = 0;
    for (int64_t want : shape) {
        if (want >= 0 && t->shape[i] != want)
            return fail(HEED_ERR_INVALID_ARGUMENT, "%s: shape[%d] = %lld, expected %lld", name, i, (long long)t->shape[i],
                        (long long)want);
        ++i;
    }
    return HEED_OK;
}

heed_status check_quant_params(int32_t bits, int32_t group) {
    if (bits != 8 && bits != 4 && bits != 2)
        return fail(HEED_ERR_INVALID_ARGUMENT, "bits = %d: use 8, 4 or 2", bits);
    if (group != 32 && group != 64 && group != 128)
        return fail(HEED_ERR_INVALID_ARGUMENT, "group_size = %d: use 32, 64 or 128", group);
    return HEED_OK;
}

int32_t code_dtype(int32_t bits) { return bits == 8 ? HEED_U8 : bits == 4 ? HEED_U4 : HEED_U2; }

void set_shape(heed_tensor &t, int32_t dtype, std::initializer_list<int64_t> shape) {
    t = heed_tensor{};
    t.dtype = dtype;
    t.ndim = (int32_t)shape.size();
    int i = 0;
    for (int64_t s : shape) t.shape[i++] = s;
}

size_t tensor_bytes(const heed_tensor &t) {
    int64_t n = element_count(t);
    if (t.dtype == HEED_U4) return (size_t)(n / 2);
    if (t.dtype == HEED_U2) return (size_t)(n / 4);
    return (size_t)n * dtype_size(t.dtype);
}

heed_status fill_layout(const quant_dims &D, heed_quant_kv *c) {
    c->bits = D.bits;
    c->group_size = D.group;
    const int32_t cd = code_dtype(D.bits);
    set_shape(c->k_codes, cd, {D.B, D.Hkv, D.N, D.d});
    set_shape(c->k_scale, HEED_F16, {D.B, D.Hkv, D.k_groups(), D.d});
    set_shape(c->k_zero, HEED_F16, {D.B, D.Hkv, D.k_groups(), D.d});
    set_shape(c->v_codes, cd, {D.B, D.Hkv, D.N, D.dv});
    set_shape(c->v_scale, HEED_F16, {D.B, D.Hkv, D.N, D.v_groups()});
    set_shape(c->v_zero, HEED_F16, {D.B, D.Hkv, D.N, D.v_groups()});
    set_shape(c->salient_slot, HEED_I32, {D.B, D.N});
    set_shape(c->salient_count, HEED_I32, {D.B});
    set_shape(c->salient_k, HEED_F16, {D.B, D.Hkv, D.S, D.d});
    set_shape(c->salient_v, HEED_F16, {D.B, D.Hkv, D.S, D.dv});
    return HEED_OK;
}

heed_status check_dims(const quant_dims &D) {
    heed_status s = check_quant_params(D.bits, D.group);
    if (s != HEED_OK) return s;
    if (D.B < 1 || D.Hkv < 1 || D.N < 1 || D.d < 1 || D.dv < 1)
        return fail(HEED_ERR_INVALID_ARGUMENT, "batch, kv_heads, tokens, head_dim and value_dim must be positive");
    if (D.B > kMaxExtent || D.Hkv > kMaxExtent || D.N > kMaxExtent || D.d > 65536 || D.dv > 65536)
        return fail(HEED_ERR_INVALID_ARGUMENT, "a cache dimension is too large");
    if (D.B * D.Hkv * D.N > kMaxElements / std::max(D.d, D.dv))
        return fail(HEED_ERR_INVALID_ARGUMENT, "the cache is too large");
    const int per_byte = 8 / D.bits;
    if (D.d % per_byte != 0 || D.dv % per_byte != 0)
        return fail(HEED_ERR_INVALID_ARGUMENT, "head_dim %lld and value_dim %lld must be multiples of %d for %d-bit codes",
                    (long long)D.d, (long long)D.dv, per_byte, D.bits);
    if (D.S < 0 || D.S > D.N)
        return fail(HEED_ERR_INVALID_ARGUMENT, "salient_capacity = %lld must be in [0, tokens = %lld]", (long long)D.S,
                    (long long)D.N);
    return HEED_OK;
}

// A cache the caller filled: every tensor has the layout heed_quant_kv_sizes gives for its
// dimensions (read from k_codes, v_codes and salient_k), contiguous, with data.
heed_status check_cache(const heed_quant_kv *c, quant_dims *out) {
    if (c == nullptr) return fail(HEED_ERR_INVALID_ARGUMENT, "cache: pointer is null");
    heed_status s = check_quant_params(c->bits, c->group_size);
    if (s != HEED_OK) return fail(s, "cache: %s", heed_last_error());
    const int32_t cd = code_dtype(c->bits);
    if ((s = check_shaped(&c->k_codes, "cache.k_codes", {cd}, {-1, -1, -1, -1})) != HEED_OK) return s;
    if ((s = check_shaped(&c->v_codes, "cache.v_codes", {cd}, {-1, -1, -1, -1})) != HEED_OK) return s;
    if ((s = check_shaped(&c->salient_k, "cache.salient_k", {HEED_F16}, {-1, -1, -1, -1}, true)) != HEED_OK) return s;
    quant_dims D{};
    D.B = c->k_codes.shape[0], D.Hkv = c->k_codes.shape[1], D.N = c->k_codes.shape[2], D.d = c->k_codes.shape[3];
    D.dv = c->v_codes.shape[3], D.S = c->salient_k.shape[2], D.bits = c->bits, D.group = c->group_size;
    if ((s = check_dims(D)) != HEED_OK) return fail(s, "cache: %s", heed_last_error());
    heed_quant_kv want{};
    fill_layout(D, &want);
    const heed_tensor *have[] = {&c->k_codes, &c->k_scale, &c->k_zero, &c->v_codes, &c->v_scale,
                                 &c->v_zero, &c->salient_slot, &c->salient_count, &c->salient_k, &c->salient_v};
    const heed_tensor *expect[] = {&want.k_codes, &want.k_scale, &want.k_zero, &want.v_codes, &want.v_scale,
                                   &want.v_zero, &want.salient_slot, &want.salient_count, &want.salient_k, &want.salient_v};
    const char *names[] = {"cache.k_codes", "cache.k_scale", "cache.k_zero", "cache.v_codes", "cache.v_scale",
                           "cache.v_zero", "cache.salient_slot", "cache.salient_count", "cache.salient_k", "cache.salient_v"};
    for (int i = 0; i < HEED_QUANT_KV_TENSORS; ++i) {
        const heed_tensor &t = *expect[i];
        s = check_tensor(have[i], names[i], t.ndim, {t.dtype}, D.S == 0);
        if (s != HEED_OK) return s;
        for (int j = 0; j < t.ndim; ++j)
            if (have[i]->shape[j] != t.shape[j])
                return fail(HEED_ERR_INVALID_ARGUMENT, "%s: shape[%d] = %lld, expected %lld (see heed_quant_kv_sizes)",
                            names[i], j, (long long)have[i]->shape[j], (long long)t.shape[j]);
        if (!contiguous(*have[i]))
            return fail(HEED_ERR_INVALID_ARGUMENT, "%s: cache tensors must be contiguous", names[i]);
    }
    *out = D;
    return HEED_OK;
}

heed_status place_cache(const heed_quant_kv &c, std::initializer_list<const heed_tensor *> others, placement *where) {
    heed_status s = placement_of({&c.k_codes, &c.k_scale, &c.k_zero, &c.v_codes, &c.v_scale, &c.v_zero,
                                  &c.salient_slot, &c.salient_count, &c.salient_k, &c.salient_v},
                                 where);
    if (s != HEED_OK) return s;
    placement rest;
    if ((s = placement_of(others, &rest)) != HEED_OK) return s;
    bool any_other = false;
    for (const heed_tensor *t : others) any_other = any_other || (t && t->data);
    if (any_other && (rest.cuda != where->cuda || rest.device != where->device))
        return fail(HEED_ERR_INVALID_ARGUMENT, "the cache and the other tensors of this call live in different memories");
    return HEED_OK;
}

bool finite(float x) { return std::isfinite(x); }

}  // namespace
}  // namespace heed::linear_kv

using namespace heed;
using namespace heed::linear_kv;

extern "C" {

heed_status heed_linear_attention_causal(const heed_tensor *q, const heed_tensor *k, const heed_tensor *v,
                                         const heed_tensor *decay, const heed_tensor *state_in,
                                         const heed_tensor *z_in, int32_t feature_map, int32_t normalize,
                                         float epsilon, heed_tensor *out, heed_tensor *state_out,
                                         heed_tensor *z_out) {
    HEED_GUARD_BEGIN
    heed_status s = check_shaped(q, "q", kFloatTypes, {-1, -1, -1, -1});
    if (s != HEED_OK) return s;
    const int64_t B = q->shape[0], H = q->shape[1], N = q->shape[2], d = q->shape[3];
    if ((s = check_shaped(k, "k", kFloatTypes, {B, H, N, d})) != HEED_OK) return s;
    if ((s = check_shaped(v, "v", kFloatTypes, {B, H, N, -1})) != HEED_OK) return s;
    const int64_t dv = v->shape[3];
    if (d > 65536 || dv > 65536) return fail(HEED_ERR_INVALID_ARGUMENT, "q/v: head dimensions above 65536 are not accepted");
    if ((s = check_shaped(out, "out", kFloatTypes, {B, H, N, dv})) != HEED_OK) return s;
    if (decay && (s = check_shaped(decay, "decay", {HEED_F32}, {H})) != HEED_OK) return s;
    if (state_in && (s = check_shaped(state_in, "state_in", {HEED_F32}, {B, H, d, dv})) != HEED_OK) return s;
    if (z_in && (s = check_shaped(z_in, "z_in", {HEED_F32}, {B, H, d})) != HEED_OK) return s;
    if (state_out && (s = check_shaped(state_out, "state_out", {HEED_F32}, {B, H, d, dv})) != HEED_OK) return s;
    if (z_out && (s = check_shaped(z_out, "z_out", {HEED_F32}, {B, H, d})) != HEED_OK) return s;
    if (feature_map != HEED_LINEAR_FEATURE_IDENTITY && feature_map != HEED_LINEAR_FEATURE_ELU1)
        return fail(HEED_ERR_INVALID_ARGUMENT, "feature_map = %d: use HEED_LINEAR_FEATURE_IDENTITY (0) or HEED_LINEAR_FEATURE_ELU1 (1)", feature_map);
    if (normalize != 0 && normalize != 1) return fail(HEED_ERR_INVALID_ARGUMENT, "normalize = %d: use 0 or 1", normalize);
    if (!finite(epsilon)) return fail(HEED_ERR_INVALID_ARGUMENT, "epsilon must be finite (<= 0 selects the default)");
    placement where;
    if ((s = placement_of({q, k, v, decay, state_in, z_in, out, state_out, z_out}, &where)) != HEED_OK) return s;
    if (decay && !where.cuda)
        for (int64_t h = 0; h < H; ++h) {
            float x = load_f32(*decay, h * stride_at(*decay, 0));
            if (!(x >= 0.0f && x <= 1.0f))
                return fail(HEED_ERR_INVALID_ARGUMENT, "decay[%lld] = %g must be in [0, 1]", (long long)h, (double)x);
        }
    linear_args a{q, k, v, decay, state_in, z_in, out, state_out, z_out, feature_map, normalize != 0,
                  epsilon > 0.0f ? epsilon : HEED_LINEAR_DEFAULT_EPSILON, B, H, N, d, dv};
    if (where.cuda) {
#ifdef HEED_WITH_CUDA
        if (d > 128) return fail(HEED_ERR_UNSUPPORTED, "q: the CUDA linear attention takes d <= 128, got %lld", (long long)d);
        return linear_attention_cuda(a, where.device);
#endif
    }
    return linear_attention_cpu(a);
    HEED_GUARD_END
}

heed_status heed_quant_kv_sizes(int64_t batch, int64_t kv_heads, int64_t tokens, int64_t head_dim, int64_t value_dim,
                                int32_t bits, int32_t group_size, int64_t salient_capacity, heed_quant_kv *cache,
                                size_t *bytes, size_t *total_bytes) {
    HEED_GUARD_BEGIN
    if (cache == nullptr) return fail(HEED_ERR_INVALID_ARGUMENT, "cache: pointer is null");
    quant_dims D{batch, kv_heads, tokens, head_dim, value_dim, salient_capacity, bits, group_size};
    heed_status s = check_dims(D);
    if (s != HEED_OK) return s;
    fill_layout(D, cache);
    const heed_tensor *all[] = {&cache->k_codes, &cache->k_scale, &cache->k_zero, &cache->v_codes, &cache->v_scale,
                                &cache->v_zero, &cache->salient_slot, &cache->salient_count, &cache->salient_k, &cache->salient_v};
    size_t total = 0;
    for (int i = 0; i < HEED_QUANT_KV_TENSORS; ++i) {
        size_t n = tensor_bytes(*all[i]);
        if (bytes) bytes[i] = n;
        total += n;
    }
    if (total_bytes) *total_bytes = total;
    return ok();
    HEED_GUARD_END
}

heed_status heed_kv_quantize(const heed_tensor *k, const heed_tensor *v, const heed_tensor *salient_mask,
                             heed_quant_kv *cache) {
    HEED_GUARD_BEGIN
    quant_dims D{};
    heed_status s = check_cache(cache, &D);
    if (s != HEED_OK) return s;
    if ((s = check_shaped(k, "k", kFloatTypes, {D.B, D.Hkv, D.N, D.d})) != HEED_OK) return s;
    if ((s = check_shaped(v, "v", kFloatTypes, {D.B, D.Hkv, D.N, D.dv})) != HEED_OK) return s;
    if (salient_mask) {
        if (salient_mask->ndim == 2) s = check_shaped(salient_mask, "salient_mask", {HEED_U8}, {D.B, D.N});
        else s = check_shaped(salient_mask, "salient_mask", {HEED_U8}, {D.N});
        if (s != HEED_OK) return s;
    }
    placement where;
    if ((s = place_cache(*cache, {k, v, salient_mask}, &where)) != HEED_OK) return s;
    quantize_args a{k, v, salient_mask, cache, D};
    if (where.cuda) {
#ifdef HEED_WITH_CUDA
        return kv_quantize_cuda(a, where.device);
#endif
    }
    return kv_quantize_cpu(a);
    HEED_GUARD_END
}

heed_status heed_kv_dequantize(const heed_quant_kv *cache, heed_tensor *k_out, heed_tensor *v_out) {
    HEED_GUARD_BEGIN
    quant_dims D{};
    heed_status s = check_cache(cache, &D);
    if (s != HEED_OK) return s;
    if (k_out && (s = check_shaped(k_out, "k_out", kFloatTypes, {D.B, D.Hkv, D.N, D.d})) != HEED_OK) return s;
    if (v_out && (s = check_shaped(v_out, "v_out", kFloatTypes, {D.B, D.Hkv, D.N, D.dv})) != HEED_OK) return s;
    placement where;
    if ((s = place_cache(*cache, {k_out, v_out}, &where)) != HEED_OK) return s;
    dequantize_args a{cache, k_out, v_out, D};
    if (where.cuda) {
#ifdef HEED_WITH_CUDA
        return kv_dequantize_cuda(a, where.device);
#endif
    }
    return kv_dequantize_cpu(a);
    HEED_GUARD_END
}

heed_status heed_quant_decode_attention(const heed_tensor *q, const heed_quant_kv *cache, int32_t causal, float scale,
                                        int32_t num_splits, heed_tensor *out) {
    HEED_GUARD_BEGIN
    quant_dims D{};
    heed_status s = check_cache(cache, &D);
    if (s != HEED_OK) return s;
    if ((s = check_shaped(q, "q", kFloatTypes, {D.B, -1, -1, D.d})) != HEED_OK) return s;
    const int64_t H = q->shape[1], nq = q->shape[2];
    if (H % D.Hkv != 0)
        return fail(HEED_ERR_INVALID_ARGUMENT, "q: %lld heads is not a multiple of the cache's %lld kv heads", (long long)H,
                    (long long)D.Hkv);
    if (nq > 8 || nq > D.N)
        return fail(HEED_ERR_INVALID_ARGUMENT, "q: %lld query rows; decode takes 1..8 and at most the %lld cached tokens",
                    (long long)nq, (long long)D.N);
    if ((s = check_shaped(out, "out", {HEED_F32, HEED_F16}, {D.B, H, nq, D.dv})) != HEED_OK) return s;
    if (causal != 0 && causal != 1) return fail(HEED_ERR_INVALID_ARGUMENT, "causal = %d: use 0 or 1", causal);
    if (!finite(scale)) return fail(HEED_ERR_INVALID_ARGUMENT, "scale must be finite (<= 0 selects 1/sqrt(d))");
    if (num_splits < 0) return fail(HEED_ERR_INVALID_ARGUMENT, "num_splits = %d must be >= 0 (0 chooses)", num_splits);
    placement where;
    if ((s = place_cache(*cache, {q, out}, &where)) != HEED_OK) return s;
    decode_args a{q, cache, out, D, H, nq, causal != 0, scale > 0.0f ? scale : 1.0f / std::sqrt((float)D.d), num_splits};
    if (where.cuda) {
#ifdef HEED_WITH_CUDA
        if (D.d != D.dv || (D.d != 64 && D.d != 128))
            return fail(HEED_ERR_UNSUPPORTED, "the CUDA decode attention takes d = dv = 64 or 128 (got %lld, %lld)",
                        (long long)D.d, (long long)D.dv);
        return quant_decode_cuda(a, where.device);
#endif
    }
    return quant_decode_cpu(a);
    HEED_GUARD_END
}

}  // extern "C"
