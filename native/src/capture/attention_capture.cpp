// attention_capture.cpp - copies post-RoPE Q and K rows out of llama.cpp's graph as it runs.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <map>
#include <vector>

#include "error.hpp"
#include "ggml_library.hpp"
#include "ggml-backend.h"
#include "ggml.h"
#include "heed/attention.h"
#include "heed/capture.h"
#include "tensor_view.hpp"

namespace {

// One layer's rows: [n][heads][head_dim] in the store dtype, with their positions (ascending).
struct row_store {
    std::vector<uint8_t> data;
    std::vector<int32_t> positions;
    int32_t appended_in_batch = 0;  // rows added since heed_capture_begin (across ubatches)

    size_t bytes() const { return data.capacity() + positions.capacity() * sizeof(int32_t); }
};

struct layer_store {
    row_store q, k;
    std::vector<double> reference;  // kq_soft_max sums per KV cell
};

enum class role { query, key, softmax };

bool parse_name(const char *name, role *r, int32_t *layer) {
    const char *rest;
    if (std::strncmp(name, "Qcur-", 5) == 0) {
        *r = role::query;
        rest = name + 5;
    } else if (std::strncmp(name, "Kcur-", 5) == 0) {
        *r = role::key;
        rest = name + 5;
    } else if (std::strncmp(name, "kq_soft_max-", 12) == 0) {
        *r = role::softmax;
        rest = name + 12;
    } else {
        return false;
    }
    char *end = nullptr;
    long value = std::strtol(rest, &end, 10);
    if (end == rest || *end != '\0' || value < 0) return false;
    *layer = static_cast<int32_t>(value);
    return true;
}

}  // namespace

struct heed_capture {
    std::map<int32_t, layer_store> layers;
    int32_t store_dtype = HEED_F32;
    bool reference_softmax = false;
    int32_t position = 0;
    bool keep_queries = false, keep_keys = false;
    int32_t n_head = 0, n_head_kv = 0, head_dim = 0;
    std::vector<float> scratch;
    heed::ggml_library ggml = heed::own_ggml_library();  // reads the tensors of the ggml that decodes

    ~heed_capture() { heed::close_ggml_library(&ggml); }

    size_t elem() const { return store_dtype == HEED_F16 ? 2 : 4; }

    void append(row_store &store, const ggml_tensor *t, int32_t heads) {
        const int64_t d = t->ne[0], n = t->ne[2];
        scratch.resize(static_cast<size_t>(d * heads * n));
        if (ggml.is_contiguous(t)) {
            ggml.tensor_get(t, scratch.data(), 0, scratch.size() * sizeof(float));
        } else {  // copy row by row through the tensor's strides
            for (int64_t i = 0; i < n; ++i)
                for (int64_t h = 0; h < heads; ++h)
                    ggml.tensor_get(t, scratch.data() + (i * heads + h) * d, i * t->nb[2] + h * t->nb[1],
                                    d * sizeof(float));
        }
        size_t row_bytes = static_cast<size_t>(d * heads) * elem();
        size_t old = store.data.size();
        store.data.resize(old + row_bytes * n);
        if (store_dtype == HEED_F16) {
            auto *out = reinterpret_cast<uint16_t *>(store.data.data() + old);
            for (size_t i = 0; i < scratch.size(); ++i) out[i] = heed::float_to_half(scratch[i]);
        } else {
            std::memcpy(store.data.data() + old, scratch.data(), scratch.size() * sizeof(float));
        }
        for (int64_t i = 0; i < n; ++i) store.positions.push_back(position + store.appended_in_batch++);
    }

    void add_reference(layer_store &layer, const ggml_tensor *t) {
        // [n_kv, n_tokens, n_head]: sum over heads and rows per KV cell.
        const int64_t n_kv = t->ne[0], rows = t->ne[1] * t->ne[2];
        std::vector<float> buffer(static_cast<size_t>(n_kv));
        if (layer.reference.size() < static_cast<size_t>(n_kv)) layer.reference.resize(static_cast<size_t>(n_kv), 0.0);
        for (int64_t r = 0; r < rows; ++r) {
            int64_t i1 = r % t->ne[1], i2 = r / t->ne[1];
            ggml.tensor_get(t, buffer.data(), i1 * t->nb[1] + i2 * t->nb[2], n_kv * sizeof(float));
            for (int64_t j = 0; j < n_kv; ++j) layer.reference[static_cast<size_t>(j)] += buffer[static_cast<size_t>(j)];
        }
    }
};

namespace {

bool eval_callback(ggml_tensor *t, bool ask, void *user_data) {
    auto *session = static_cast<heed_capture *>(user_data);
    role r;
    int32_t layer;
    if (session == nullptr || !parse_name(t->name, &r, &layer)) return !ask ? true : false;
    auto it = session->layers.find(layer);
    if (it == session->layers.end()) return ask ? false : true;
    bool wanted = false;
    switch (r) {
        case role::query: wanted = t->op == GGML_OP_ROPE && session->keep_queries; break;
        case role::key: wanted = t->op == GGML_OP_ROPE && session->keep_keys; break;
        case role::softmax: wanted = session->reference_softmax && session->keep_queries; break;
    }
    if (ask) return wanted && t->type == GGML_TYPE_F32;
    if (!wanted || t->type != GGML_TYPE_F32) return true;
    try {
        if (r == role::softmax) {
            session->add_reference(it->second, t);
            return true;
        }
        int32_t heads = static_cast<int32_t>(t->ne[1]);
        if (session->head_dim == 0) session->head_dim = static_cast<int32_t>(t->ne[0]);
        if (r == role::query) {
            session->n_head = heads;
            session->append(it->second.q, t, heads);
        } else {
            session->n_head_kv = heads;
            session->append(it->second.k, t, heads);
        }
    } catch (...) {
        return false;  // out of memory: stop the decode rather than unwind through ggml
    }
    return true;
}

heed_status check_session(const heed_capture *session) {
    if (session == nullptr) return heed::fail(HEED_ERR_INVALID_ARGUMENT, "capture session is null");
    return HEED_OK;
}

heed_status find_layer(const heed_capture *session, int32_t layer, const layer_store **out) {
    auto it = session->layers.find(layer);
    if (it == session->layers.end())
        return heed::fail(HEED_ERR_NOT_FOUND, "layer %d is not captured by this session", layer);
    *out = &it->second;
    return HEED_OK;
}

void drop_rows(row_store &store, size_t row_bytes, int32_t p0, int32_t p1) {
    size_t write = 0;
    for (size_t read = 0; read < store.positions.size(); ++read) {
        int32_t p = store.positions[read];
        if (p >= p0 && (p1 < 0 || p < p1)) continue;
        if (write != read) {
            store.positions[write] = p;
            std::memmove(store.data.data() + write * row_bytes, store.data.data() + read * row_bytes, row_bytes);
        }
        ++write;
    }
    store.positions.resize(write);
    store.data.resize(write * row_bytes);
}

}  // namespace

extern "C" {

heed_status heed_capture_create(const heed_capture_options *options, heed_capture **session) {
    if (session == nullptr) return heed::fail(HEED_ERR_INVALID_ARGUMENT, "heed_capture_create: session must not be null");
    *session = nullptr;
    if (options == nullptr || options->layers == nullptr)
        return heed::fail(HEED_ERR_INVALID_ARGUMENT, "heed_capture_create: options and options->layers must not be null");
    if (options->n_layers < 1 || options->n_layers > 1024)
        return heed::fail(HEED_ERR_INVALID_ARGUMENT, "heed_capture_create: n_layers must be in [1, 1024], got %d", options->n_layers);
    if (options->store_dtype != HEED_F32 && options->store_dtype != HEED_F16)
        return heed::fail(HEED_ERR_INVALID_ARGUMENT, "heed_capture_create: store_dtype must be HEED_F32 or HEED_F16");
    HEED_GUARD_BEGIN
    auto s = new heed_capture();
    s->store_dtype = options->store_dtype;
    s->reference_softmax = options->reference_softmax != 0;
    for (int32_t i = 0; i < options->n_layers; ++i) {
        int32_t layer = options->layers[i];
        if (layer < 0 || !s->layers.emplace(layer, layer_store{}).second) {
            delete s;
            return heed::fail(HEED_ERR_INVALID_ARGUMENT, "heed_capture_create: layer %d is negative or listed twice", layer);
        }
    }
    *session = s;
    return heed::ok();
    HEED_GUARD_END
}

void heed_capture_free(heed_capture *session) { delete session; }

void *heed_capture_eval_callback(void) {
    return reinterpret_cast<void *>(static_cast<ggml_backend_sched_eval_callback>(&eval_callback));
}

heed_status heed_capture_use_ggml(heed_capture *session, const char *ggml_base_library) {
    if (heed_status s = check_session(session)) return s;
    heed::ggml_library library{};
    if (heed_status s = heed::open_ggml_library(ggml_base_library, &library)) return s;
    heed::close_ggml_library(&session->ggml);
    session->ggml = library;
    return heed::ok();
}

heed_status heed_capture_begin(heed_capture *session, int32_t position, int32_t keep_queries, int32_t keep_keys) {
    if (heed_status s = check_session(session)) return s;
    if (position < 0) return heed::fail(HEED_ERR_INVALID_ARGUMENT, "heed_capture_begin: position must be >= 0, got %d", position);
    session->position = position;
    session->keep_queries = keep_queries != 0;
    session->keep_keys = keep_keys != 0;
    for (auto &entry : session->layers) entry.second.q.appended_in_batch = entry.second.k.appended_in_batch = 0;
    return heed::ok();
}

heed_status heed_capture_drop(heed_capture *session, int32_t p0, int32_t p1) {
    if (heed_status s = check_session(session)) return s;
    if (p0 < 0 || (p1 >= 0 && p1 < p0))
        return heed::fail(HEED_ERR_INVALID_ARGUMENT, "heed_capture_drop: [%d, %d) is not a range of positions", p0, p1);
    for (auto &entry : session->layers) {
        size_t elem = session->elem();
        drop_rows(entry.second.q, elem * session->n_head * session->head_dim, p0, p1);
        drop_rows(entry.second.k, elem * session->n_head_kv * session->head_dim, p0, p1);
    }
    return heed::ok();
}

heed_status heed_capture_clear(heed_capture *session) {
    if (heed_status s = check_session(session)) return s;
    for (auto &entry : session->layers) entry.second = layer_store{};
    return heed::ok();
}

heed_status heed_capture_stats(const heed_capture *session, int32_t layer, int32_t *n_queries, int32_t *n_keys,
                               int32_t *n_head, int32_t *n_head_kv, int32_t *head_dim, size_t *bytes) {
    if (heed_status s = check_session(session)) return s;
    if (!n_queries || !n_keys || !n_head || !n_head_kv || !head_dim || !bytes)
        return heed::fail(HEED_ERR_INVALID_ARGUMENT, "heed_capture_stats: no output may be null");
    const layer_store *l = nullptr;
    if (heed_status s = find_layer(session, layer, &l)) return s;
    *n_queries = static_cast<int32_t>(l->q.positions.size());
    *n_keys = static_cast<int32_t>(l->k.positions.size());
    *n_head = session->n_head;
    *n_head_kv = session->n_head_kv;
    *head_dim = session->head_dim;
    size_t total = session->scratch.capacity() * sizeof(float);
    for (const auto &entry : session->layers)
        total += entry.second.q.bytes() + entry.second.k.bytes() + entry.second.reference.capacity() * sizeof(double);
    *bytes = total;
    return heed::ok();
}

heed_status heed_capture_key_positions(const heed_capture *session, int32_t layer, int32_t *positions, int32_t capacity) {
    if (heed_status s = check_session(session)) return s;
    const layer_store *l = nullptr;
    if (heed_status s = find_layer(session, layer, &l)) return s;
    if (positions == nullptr || capacity < static_cast<int32_t>(l->k.positions.size()))
        return heed::fail(HEED_ERR_INVALID_ARGUMENT, "heed_capture_key_positions: need room for %zu positions", l->k.positions.size());
    std::copy(l->k.positions.begin(), l->k.positions.end(), positions);
    return heed::ok();
}

heed_status heed_capture_aggregate(heed_capture *session, int32_t layer, int32_t q_begin, int32_t q_end, float scale,
                                   int32_t causal, int32_t use_cuda, float *mass, int32_t capacity) {
    if (heed_status s = check_session(session)) return s;
    const layer_store *l = nullptr;
    if (heed_status s = find_layer(session, layer, &l)) return s;
    const int32_t n_keys = static_cast<int32_t>(l->k.positions.size());
    if (mass == nullptr || capacity < n_keys)
        return heed::fail(HEED_ERR_INVALID_ARGUMENT, "heed_capture_aggregate: mass needs room for %d keys", n_keys);
    if (n_keys == 0) return heed::fail(HEED_ERR_INVALID_ARGUMENT, "heed_capture_aggregate: layer %d has no key rows yet", layer);
    // The query rows in [q_begin, q_end): positions ascend, so they form one run of rows.
    const auto &qp = l->q.positions;
    auto first = std::lower_bound(qp.begin(), qp.end(), q_begin);
    auto last = q_end < 0 ? qp.end() : std::lower_bound(first, qp.end(), q_end);
    const int64_t n_q = last - first;
    if (n_q == 0) {
        std::fill(mass, mass + n_keys, 0.0f);
        return heed::ok();
    }
    const int64_t offset = first - qp.begin();
    const int32_t dtype = session->store_dtype;
    const size_t elem = session->elem();
    heed_tensor q{}, q_pos{}, k{}, k_pos{}, out{};
    q = {const_cast<uint8_t *>(l->q.data.data()) + offset * elem * session->n_head * session->head_dim, dtype, 3,
         {n_q, session->n_head, session->head_dim, 0}, {0, 0, 0, 0}};
    q_pos = {const_cast<int32_t *>(qp.data()) + offset, HEED_I32, 1, {n_q, 0, 0, 0}, {0, 0, 0, 0}};
    k = {const_cast<uint8_t *>(l->k.data.data()), dtype, 3, {n_keys, session->n_head_kv, session->head_dim, 0}, {0, 0, 0, 0}};
    k_pos = {const_cast<int32_t *>(l->k.positions.data()), HEED_I32, 1, {n_keys, 0, 0, 0}, {0, 0, 0, 0}};
    out = {mass, HEED_F32, 1, {n_keys, 0, 0, 0}, {0, 0, 0, 0}};
    if (!use_cuda) return heed_attention_aggregate(&q, &q_pos, &k, &k_pos, scale, causal, &out, nullptr);

    // CUDA: stage the rows on the device, run there, copy the masses back.
    void *buffers[5] = {};
    size_t sizes[5] = {n_q * elem * session->n_head * session->head_dim, n_q * sizeof(int32_t),
                       n_keys * elem * session->n_head_kv * session->head_dim, n_keys * sizeof(int32_t),
                       n_keys * sizeof(float)};
    heed_tensor *tensors[5] = {&q, &q_pos, &k, &k_pos, &out};
    heed_status status = HEED_OK;
    for (int i = 0; i < 5 && status == HEED_OK; ++i) {
        status = heed_cuda_malloc(0, sizes[i], &buffers[i]);
        if (status == HEED_OK && i < 4) status = heed_cuda_memcpy(buffers[i], tensors[i]->data, sizes[i], 0);
    }
    if (status == HEED_OK) {
        for (int i = 0; i < 5; ++i) tensors[i]->data = buffers[i];
        status = heed_attention_aggregate(&q, &q_pos, &k, &k_pos, scale, causal, &out, nullptr);
        if (status == HEED_OK) status = heed_cuda_memcpy(mass, buffers[4], sizes[4], 1);
    }
    for (void *b : buffers) heed_cuda_free(b);
    return status == HEED_OK ? heed::ok() : status;
}

heed_status heed_capture_reference_mass(const heed_capture *session, int32_t layer, double *mass, int32_t capacity,
                                        int32_t *n_cells) {
    if (heed_status s = check_session(session)) return s;
    if (n_cells == nullptr || capacity < 0 || (mass == nullptr && capacity > 0))
        return heed::fail(HEED_ERR_INVALID_ARGUMENT, "heed_capture_reference_mass: n_cells must not be null, nor mass when capacity > 0");
    const layer_store *l = nullptr;
    if (heed_status s = find_layer(session, layer, &l)) return s;
    *n_cells = static_cast<int32_t>(l->reference.size());
    for (int32_t i = 0; i < capacity; ++i) mass[i] = i < *n_cells ? l->reference[static_cast<size_t>(i)] : 0.0;
    return heed::ok();
}

heed_status heed_capture_get_keys(const heed_capture *session, int32_t layer, int32_t p0, int32_t p1, void *rows,
                                  int32_t *positions, int32_t capacity, int32_t *n_rows) {
    if (heed_status s = check_session(session)) return s;
    if (n_rows == nullptr || p0 < 0 || (p1 >= 0 && p1 < p0) || capacity < 0)
        return heed::fail(HEED_ERR_INVALID_ARGUMENT, "heed_capture_get_keys: n_rows must not be null and [%d, %d) must be a range", p0, p1);
    const layer_store *l = nullptr;
    if (heed_status s = find_layer(session, layer, &l)) return s;
    const auto &kp = l->k.positions;
    auto first = std::lower_bound(kp.begin(), kp.end(), p0);
    auto last = p1 < 0 ? kp.end() : std::lower_bound(first, kp.end(), p1);
    *n_rows = static_cast<int32_t>(last - first);
    if (rows == nullptr && positions == nullptr) return heed::ok();  // the count only
    if (rows == nullptr || positions == nullptr || capacity < *n_rows)
        return heed::fail(HEED_ERR_INVALID_ARGUMENT, "heed_capture_get_keys: need room for %d rows and positions", *n_rows);
    const size_t row_bytes = session->elem() * session->n_head_kv * session->head_dim;
    const size_t offset = static_cast<size_t>(first - kp.begin());
    std::memcpy(rows, l->k.data.data() + offset * row_bytes, static_cast<size_t>(*n_rows) * row_bytes);
    std::copy(first, last, positions);
    return heed::ok();
}

heed_status heed_capture_put_keys(heed_capture *session, int32_t layer, const void *rows, const int32_t *positions,
                                  int32_t n_rows, int32_t store_dtype, int32_t n_head_kv, int32_t head_dim) {
    if (heed_status s = check_session(session)) return s;
    if (n_rows < 0 || (n_rows > 0 && (rows == nullptr || positions == nullptr)) || n_head_kv <= 0 || head_dim <= 0)
        return heed::fail(HEED_ERR_INVALID_ARGUMENT, "heed_capture_put_keys: rows, positions and the head geometry must be given");
    if (store_dtype != session->store_dtype)
        return heed::fail(HEED_ERR_INVALID_ARGUMENT, "heed_capture_put_keys: the rows' dtype differs from the session's store dtype");
    if ((session->n_head_kv != 0 && session->n_head_kv != n_head_kv) || (session->head_dim != 0 && session->head_dim != head_dim))
        return heed::fail(HEED_ERR_INVALID_ARGUMENT, "heed_capture_put_keys: rows of %d x %d do not match the session's %d KV heads x %d",
                          n_head_kv, head_dim, session->n_head_kv, session->head_dim);
    auto it = session->layers.find(layer);
    if (it == session->layers.end()) return heed::fail(HEED_ERR_NOT_FOUND, "layer %d is not captured by this session", layer);
    row_store &store = it->second.k;
    int32_t last = store.positions.empty() ? -1 : store.positions.back();
    for (int32_t i = 0; i < n_rows; ++i) {
        if (positions[i] <= last)
            return heed::fail(HEED_ERR_INVALID_ARGUMENT, "heed_capture_put_keys: positions must ascend past the layer's last key row (%d)", last);
        last = positions[i];
    }
    HEED_GUARD_BEGIN
    session->n_head_kv = n_head_kv;
    session->head_dim = head_dim;
    const size_t bytes = static_cast<size_t>(n_rows) * session->elem() * n_head_kv * head_dim;
    const auto *src = static_cast<const uint8_t *>(rows);
    store.data.insert(store.data.end(), src, src + bytes);
    store.positions.insert(store.positions.end(), positions, positions + n_rows);
    return heed::ok();
    HEED_GUARD_END
}

}  // extern "C"
