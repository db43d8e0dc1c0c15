/* attention_mass.c - a plain C program on heed.h: how much attention 4 query tokens pay to each
 * of 12 key tokens, with grouped-query attention (8 query heads over 2 key/value heads).
 *
 *   cc attention_mass.c -I native/include -L artifacts/native/linux-x64 -lheed -lm
 *   LD_LIBRARY_PATH=artifacts/native/linux-x64 ./a.out
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "heed.h"

enum { N_Q = 4, N_K = 12, HEADS = 8, KV_HEADS = 2, DIM = 64 };

static heed_tensor tensor(void *data, int32_t dtype, int32_t ndim, int64_t d0, int64_t d1, int64_t d2) {
    heed_tensor t = {data, dtype, ndim, {d0, d1, d2, 0}, {0, 0, 0, 0}}; /* zero strides: contiguous */
    return t;
}

int main(void) {
    static float q[N_Q * HEADS * DIM], k[N_K * KV_HEADS * DIM], mass[N_K];
    int32_t q_pos[N_Q], k_pos[N_K];
    srand(7);
    for (int i = 0; i < N_Q * HEADS * DIM; ++i) q[i] = (float)rand() / RAND_MAX - 0.5f;
    for (int i = 0; i < N_K * KV_HEADS * DIM; ++i) k[i] = (float)rand() / RAND_MAX - 0.5f;
    for (int j = 0; j < N_K; ++j) k_pos[j] = j;
    for (int i = 0; i < N_Q; ++i) q_pos[i] = N_K - N_Q + i; /* the queries are the last 4 tokens */

    heed_tensor tq = tensor(q, HEED_F32, 3, N_Q, HEADS, DIM), tk = tensor(k, HEED_F32, 3, N_K, KV_HEADS, DIM);
    heed_tensor tqp = tensor(q_pos, HEED_I32, 1, N_Q, 0, 0), tkp = tensor(k_pos, HEED_I32, 1, N_K, 0, 0);
    heed_tensor out = tensor(mass, HEED_F32, 1, N_K, 0, 0);

    heed_status status = heed_attention_aggregate(&tq, &tqp, &tk, &tkp, 0.0f, 1, &out, NULL);
    if (status != HEED_OK) {
        fprintf(stderr, "aggregation failed: %s (%s)\n", heed_status_name(status), heed_last_error());
        return 1;
    }
    double total = 0;
    printf("libheed %s: attention mass per key (causal, scale 1/sqrt(%d))\n", heed_version(), DIM);
    for (int j = 0; j < N_K; ++j) {
        printf("  key %2d: %.4f\n", j, mass[j]);
        total += mass[j];
    }
    /* Every query row spreads one unit of attention per head. */
    printf("total %.4f (expected %d)\n", total, N_Q * HEADS);
    if (fabs(total - N_Q * HEADS) > 1e-3) return 1;

    /* Bad input is a status code and a message, never a crash. */
    heed_tensor wrong = tensor(k, HEED_F32, 3, N_K, 3, DIM); /* 8 heads are not a multiple of 3 */
    status = heed_attention_aggregate(&tq, &tqp, &wrong, &tkp, 0.0f, 1, &out, NULL);
    printf("with 3 kv heads: %s: %s\n", heed_status_name(status), heed_last_error());
    return status == HEED_ERR_INVALID_ARGUMENT ? 0 : 1;
}
