/* heed/capture.h - attention capture: post-RoPE Q and K read out of llama.cpp while it decodes.
 *
 * A capture session is installed as llama_context_params.cb_eval (the function that
 * heed_capture_eval_callback() returns) with the session as cb_eval_user_data. For the layers
 * it was created with, it copies the rows of the tensors llama.cpp names "Qcur-L" and "Kcur-L"
 * (op ROPE, shape [head_dim, n_head(_kv), n_tokens]) into its own store, from host or device
 * memory. Nothing else in the graph is read, so the graph runs as before between those nodes.
 *
 * Positions: before each llama_decode the caller says at which position the batch starts and
 * whether to keep its query rows and/or key rows (heed_capture_begin). Rows keep that order
 * across ubatches and across decodes that reuse the KV cache. The caller drops positions when
 * it removes them from the KV cache (heed_capture_drop), so the store mirrors the cache.
 * One sequence per session; llama_decode calls the callback on the calling thread.
 *
 * For tests, a session can also sum llama.cpp's own softmax ("kq_soft_max-L", only present
 * with flash attention off) the way heed_capture_aggregate sums its own: the reference that
 * the fused result is checked against. Its key index is the KV cell, which equals the
 * position while one sequence fills an empty cache in order. */
#ifndef HEED_CAPTURE_H
#define HEED_CAPTURE_H

#include "status.h"

HEED_EXTERN_C_BEGIN

typedef struct heed_capture heed_capture;

typedef struct heed_capture_options {
    const int32_t *layers;  /* the layers to capture (0-based), no duplicates */
    int32_t n_layers;       /* 1..1024 */
    int32_t store_dtype;    /* HEED_F32 or HEED_F16: how Q and K rows are kept */
    int32_t reference_softmax; /* nonzero: also sum kq_soft_max-L (tests; flash attention off) */
} heed_capture_options;

HEED_API heed_status heed_capture_create(const heed_capture_options *options, heed_capture **session);
HEED_API void heed_capture_free(heed_capture *session);

/* The ggml_backend_sched_eval_callback to install as cb_eval, with the session as user data. */
HEED_API void *heed_capture_eval_callback(void);

/* Reads tensors with the functions of another ggml already loaded in this process, e.g. the
 * "libggml-base.so" of LLamaSharp's llama.cpp when the session is installed as cb_eval of a
 * context made by that llama.cpp (Heed's own ggml is libheed-ggml-base.so). The library is
 * found among those loaded (never loaded by this call), and its ggml_tensor layout is checked
 * against the one libheed was built for: HEED_ERR_UNSUPPORTED names the first field that differs.
 * HEED_ERR_NOT_FOUND when no such library is loaded. */
HEED_API heed_status heed_capture_use_ggml(heed_capture *session, const char *ggml_base_library);

/* Before a decode: its first token is at `position`; keep query rows and/or key rows. */
HEED_API heed_status heed_capture_begin(heed_capture *session, int32_t position, int32_t keep_queries,
                                        int32_t keep_keys);

/* Forget rows whose position is in [p0, p1); p1 < 0 means to the end. */
HEED_API heed_status heed_capture_drop(heed_capture *session, int32_t p0, int32_t p1);

/* Forget everything (including the reference sums). */
HEED_API heed_status heed_capture_clear(heed_capture *session);

/* Rows held for a layer, the model's head geometry (0 until seen), and bytes held in all. */
HEED_API heed_status heed_capture_stats(const heed_capture *session, int32_t layer, int32_t *n_queries,
                                        int32_t *n_keys, int32_t *n_head, int32_t *n_head_kv,
                                        int32_t *head_dim, size_t *bytes);

/* The positions of a layer's key rows, ascending. positions: capacity n_keys from stats. */
HEED_API heed_status heed_capture_key_positions(const heed_capture *session, int32_t layer, int32_t *positions,
                                                int32_t capacity);

/* Attention mass per key row of one layer: for every kept query row whose position is in
 * [q_begin, q_end) (q_end < 0: to the end), softmax over the layer's keys it sees (causal:
 * key position <= query position), summed over heads and rows (heed_attention_aggregate).
 * mass: n_keys floats in key-position order (see heed_capture_key_positions).
 * scale 0: 1/sqrt(head_dim). use_cuda nonzero: copy Q and K to the GPU and run there
 * (HEED_ERR_NO_CUDA without one). */
HEED_API heed_status heed_capture_aggregate(heed_capture *session, int32_t layer, int32_t q_begin, int32_t q_end,
                                            float scale, int32_t causal, int32_t use_cuda, float *mass,
                                            int32_t capacity);

/* The reference: llama.cpp's own softmax of a layer summed over heads and the query rows of
 * the decodes that kept queries, per KV cell. mass: capacity floats, cells beyond 0..n_cells-1
 * are set to 0; n_cells receives how many cells were seen. */
HEED_API heed_status heed_capture_reference_mass(const heed_capture *session, int32_t layer, double *mass,
                                                 int32_t capacity, int32_t *n_cells);

/* Key rows as stored (n_head_kv x head_dim each, in the store dtype), to keep and put back later:
 * copies a layer's key rows whose position is in [p0, p1) (p1 < 0: to the end) to rows and their
 * positions to positions. n_rows receives how many; with rows and positions both null only the
 * count is written. */
HEED_API heed_status heed_capture_get_keys(const heed_capture *session, int32_t layer, int32_t p0, int32_t p1, void *rows,
                                           int32_t *positions, int32_t capacity, int32_t *n_rows);

/* Appends key rows (from heed_capture_get_keys of a session with the same store dtype and model)
 * to a layer: positions ascending and above the layer's last key row. */
HEED_API heed_status heed_capture_put_keys(heed_capture *session, int32_t layer, const void *rows, const int32_t *positions,
                                           int32_t n_rows, int32_t store_dtype, int32_t n_head_kv, int32_t head_dim);

HEED_EXTERN_C_END

#endif /* HEED_CAPTURE_H */
