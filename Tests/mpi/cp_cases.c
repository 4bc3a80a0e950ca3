/* See cp_cases.h. Inputs are drawn from one seed on every rank; rank g takes tokens
 * [g·n, (g+1)·n) of the full tensors through strided views (no copies). */
#include "cp_cases.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    DLTensor t;
    int64_t shape[4], strides[4];
} view_t;

static DLTensor *view(view_t *v, void *data, int bool_dtype, int ndim, const int64_t *shape, const int64_t *strides) {
    memset(v, 0, sizeof *v);
    memcpy(v->shape, shape, sizeof(int64_t) * (size_t)ndim);
    if (strides) memcpy(v->strides, strides, sizeof(int64_t) * (size_t)ndim);
    else {
        v->strides[ndim - 1] = 1;
        for (int i = ndim - 2; i >= 0; i--) v->strides[i] = v->strides[i + 1] * shape[i + 1];
    }
    v->t.data = data;
    v->t.device.device_type = kDLCPU;
    v->t.ndim = ndim;
    v->t.dtype.code = bool_dtype ? kDLUInt : kDLFloat;
    v->t.dtype.bits = bool_dtype ? 8 : 32;
    v->t.dtype.lanes = 1;
    v->t.shape = v->shape;
    v->t.strides = v->strides;
    return &v->t;
}

static float *random_floats(size_t n, uint32_t seed) {
    float *p = malloc(n * sizeof(float));
    uint64_t s = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        /* sum of 4 uniforms, centred: roughly normal, unit-ish variance */
        double a = 0;
        for (int k = 0; k < 4; k++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            a += (double)(s >> 11) / 9007199254740992.0;
        }
        p[i] = (float)((a - 2.0) * 1.7);
    }
    return p;
}

static _Thread_local int failures, passes; /* per rank: one thread each in the in-process test */
static _Thread_local int32_t my_rank;
#define FAILF(...) do { failures++; printf("rank %d FAIL ", my_rank); printf(__VA_ARGS__); printf("\n"); } while (0)

/* One equivalence case: full (B, H, N, D) inputs, mask kind 0 none / 1 bool / 2 additive. */
static void equivalence(da_communicator comm, int size, int R, int U, int B, int H, int Hkv, int n, int D, int mask_kind) {
    int N = n * size;
    size_t qn = (size_t)B * H * N * D, kn = (size_t)B * Hkv * N * D;
    float *q = random_floats(qn, 11 + B + H), *k = random_floats(kn, 23 + D), *v = random_floats(kn, 37 + N);
    uint8_t *mb = malloc((size_t)B * N);
    float *ma = malloc(sizeof(float) * (size_t)B * N);
    for (int i = 0; i < B * N; i++) {
        mb[i] = (uint8_t)((i * 5 + 3) % 7 != 0);
        ma[i] = mb[i] ? 0.0f : -INFINITY;
    }
    if (mask_kind) /* batch 0, query-side irrelevant: drop every key of rank 0's chunk for batch 0 */
        for (int j = 0; j < n; j++) { mb[j] = 0; ma[j] = -INFINITY; }
    float *full = malloc(sizeof(float) * qn), *out = malloc(sizeof(float) * (size_t)B * H * n * D);
    view_t a, b, c, d, e;
    int64_t sq[4] = {B, H, N, D}, sk[4] = {B, Hkv, N, D}, sm[4] = {B, 1, 1, N};
    da_sdpa_options o;
    da_sdpa_options_init(&o, sizeof o);
    o.enable_gqa = Hkv != H;
    DLTensor *mfull = mask_kind == 1 ? view(&d, mb, 1, 4, sm, NULL) : mask_kind == 2 ? view(&d, ma, 0, 4, sm, NULL) : NULL;
    if (da_scaled_dot_product_attention(view(&a, q, 0, 4, sq, NULL), view(&b, k, 0, 4, sk, NULL), view(&c, v, 0, 4, sk, NULL),
                                        mfull, &o, view(&e, full, 0, 4, sq, NULL)) != DA_OK) {
        FAILF("reference SDPA: %s", da_last_error());
        goto done;
    }
    int32_t g = my_rank;
    int64_t lq[4] = {B, H, n, D}, lk[4] = {B, Hkv, n, D}, lm[4] = {B, 1, 1, n};
    int64_t stq[4] = {(int64_t)H * N * D, (int64_t)N * D, D, 1}, stk[4] = {(int64_t)Hkv * N * D, (int64_t)N * D, D, 1};
    int64_t stm[4] = {N, 0, 0, 1};
    view_t lqv, lkv, lvv, lmv, lov;
    DLTensor *mloc = mask_kind == 1 ? view(&lmv, mb + (size_t)g * n, 1, 4, lm, stm)
                   : mask_kind == 2 ? view(&lmv, ma + (size_t)g * n, 0, 4, lm, stm) : NULL;
    da_context_parallel_config cfg;
    da_context_parallel_config_init(&cfg, sizeof cfg);
    cfg.ring_degree = R;
    cfg.ulysses_degree = U;
    da_status st = da_context_parallel_attention(comm, &cfg, view(&lqv, q + (size_t)g * n * D, 0, 4, lq, stq),
                                                 view(&lkv, k + (size_t)g * n * D, 0, 4, lk, stk),
                                                 view(&lvv, v + (size_t)g * n * D, 0, 4, lk, stk), mloc,
                                                 view(&lov, out, 0, 4, lq, NULL));
    if (st != DA_OK) {
        FAILF("R=%d U=%d B=%d H=%d Hkv=%d n=%d mask=%d: %s", R, U, B, H, Hkv, n, mask_kind, da_last_error());
        goto done;
    }
    double worst = 0;
    for (int bb = 0; bb < B; bb++)
        for (int h = 0; h < H; h++)
            for (int i = 0; i < n; i++)
                for (int x = 0; x < D; x++) {
                    double diff = fabs(out[(((size_t)bb * H + h) * n + i) * D + x] -
                                       full[(((size_t)bb * H + h) * N + (size_t)g * n + i) * D + x]);
                    if (!(diff <= worst)) worst = diff; /* NaN propagates as a failure */
                }
    if (worst <= 1e-5) passes++;
    else FAILF("R=%d U=%d B=%d H=%d Hkv=%d n=%d mask=%d: max |diff| %g vs single-process SDPA", R, U, B, H, Hkv, n, mask_kind, worst);
done:
    free(q); free(k); free(v); free(mb); free(ma); free(full); free(out);
}

/* A bad-input case: every rank must fail with `want` within a few seconds. `bad_rank` = -1 means
 * every rank passes the same bad input. kind: 0 heads % U, 1 R·U ≠ size, 2 one rank's shape
 * differs, 3 one rank's config differs, 4 one rank passes NULL query. */
static void bad_input(da_communicator comm, int size, int kind, da_status want) {
    int R = size, U = 1, B = 1, H = 2, n = 4, D = 8;
    if (kind == 0) { R = 1; U = size; H = size + 1; }
    if (kind == 1) { R = size; U = 2; }
    if (kind == 3 && my_rank == size - 1) { R = 1; U = size; }
    int nl = kind == 2 && my_rank == size - 1 ? n + 1 : n;
    float *q = random_floats((size_t)B * H * nl * D, 5), *o = malloc(sizeof(float) * (size_t)B * H * nl * D);
    int64_t s[4] = {B, H, nl, D};
    view_t a, b, c, e;
    da_context_parallel_config cfg;
    da_context_parallel_config_init(&cfg, sizeof cfg);
    cfg.ring_degree = R;
    cfg.ulysses_degree = U;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    DLTensor *qt = kind == 4 && my_rank == 0 ? NULL : view(&a, q, 0, 4, s, NULL);
    da_status st = da_context_parallel_attention(comm, &cfg, qt, view(&b, q, 0, 4, s, NULL), view(&c, q, 0, 4, s, NULL),
                                                 NULL, view(&e, o, 0, 4, s, NULL));
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double seconds = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    const char *msg = da_last_error();
    if (st == want && msg[0] && seconds < 5) passes++;
    else FAILF("bad input %d: status %d (want %d) after %.2f s: %s", kind, st, want, seconds, msg);
    free(q); free(o);
}

int cp_run_cases(da_communicator comm, int *passed) {
    int32_t size = 0;
    failures = passes = 0;
    if (da_communicator_rank(comm, &my_rank, &size) != DA_OK) {
        printf("FAIL da_communicator_rank: %s\n", da_last_error());
        return 1;
    }
    for (int U = 1; U <= size; U++) {
        if (size % U) continue;
        int R = size / U;
        for (int mask = 0; mask < 3; mask++)
            for (int B = 1; B <= 2; B++) {
                equivalence(comm, size, R, U, B, 4, 4, 7, 16, mask);          /* uneven tiles: n = 7 */
                if (mask == 1) equivalence(comm, size, R, U, B, 8, 4, 33, 8, mask); /* GQA, 8 heads */
            }
        equivalence(comm, size, R, U, 1, 12, 12, 70, 32, 2);   /* larger: several key blocks per step */
    }
    bad_input(comm, size, 0, DA_ERR_VALUE);
    bad_input(comm, size, 1, DA_ERR_VALUE);
    bad_input(comm, size, 2, DA_ERR_SHAPE);
    bad_input(comm, size, 3, DA_ERR_VALUE);
    bad_input(comm, size, 4, DA_ERR_INVALID_ARGUMENT);
    /* still usable after the errors */
    equivalence(comm, size, size, 1, 1, 4, 4, 5, 8, 1);
    if (passed) *passed = passes;
    return failures;
}
