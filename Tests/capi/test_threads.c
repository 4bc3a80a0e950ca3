/* Threads: da_last_error is thread-local and replaced by later failures; forwards on distinct
 * handles and on one shared handle run concurrently with results bitwise equal to serial runs. */
#include <pthread.h>
#include <unistd.h>

#include "capi_test.h"

/* ---- thread-local errors ------------------------------------------------------------------ */

typedef struct {
    pthread_barrier_t *barrier;
    int which;
    da_status status;
    char message[512];
    char after[512];
} err_job;

static void *error_thread(void *p) {
    err_job *j = p;
    if (j->which == 0) {
        int32_t kind;
        j->status = da_processor_kind_from_name("ThreadZeroProcessor", &kind);
    } else {
        da_attention_config c;
        da_attention_config_init(&c, sizeof c);
        c.query_dim = 16;
        c.qk_norm = 99;
        da_attention a = NULL;
        j->status = da_attention_create(&c, &a);
    }
    /* both threads have failed before either reads its message */
    pthread_barrier_wait(j->barrier);
    snprintf(j->message, sizeof j->message, "%s", da_last_error());
    pthread_barrier_wait(j->barrier);
    snprintf(j->after, sizeof j->after, "%s", da_last_error());
    return NULL;
}

static void test_thread_local_errors(void) {
    /* main thread's own message survives other threads' failures */
    EXPECT_ERR(da_set_num_threads(0), DA_ERR_INVALID_ARGUMENT, "num_threads");
    char mine[512];
    snprintf(mine, sizeof mine, "%s", da_last_error());

    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, 2);
    err_job jobs[2];
    pthread_t th[2];
    for (int i = 0; i < 2; i++) {
        memset(&jobs[i], 0, sizeof jobs[i]);
        jobs[i].barrier = &barrier;
        jobs[i].which = i;
        pthread_create(&th[i], NULL, error_thread, &jobs[i]);
    }
    for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
    pthread_barrier_destroy(&barrier);
    CHECK(jobs[0].status == DA_ERR_NOT_FOUND && strstr(jobs[0].message, "ThreadZeroProcessor") &&
              !strstr(jobs[0].message, "qk_norm"),
          "thread 0 sees its own message: %s \"%s\"", da_status_name(jobs[0].status), jobs[0].message);
    CHECK(jobs[1].status == DA_ERR_VALUE && strstr(jobs[1].message, "unknown qk_norm") &&
              !strstr(jobs[1].message, "ThreadZeroProcessor"),
          "thread 1 sees its own message: %s \"%s\"", da_status_name(jobs[1].status), jobs[1].message);
    CHECK(strcmp(jobs[0].after, jobs[0].message) == 0 && strcmp(jobs[1].after, jobs[1].message) == 0,
          "messages stable while the other thread works");
    CHECK(strcmp(da_last_error(), mine) == 0, "main thread's message unchanged by other threads: \"%s\"", da_last_error());

    /* replaced by a later failure, cleared by a later successful fallible call */
    int32_t kind;
    EXPECT_ERR(da_processor_kind_from_name("FirstBadName", &kind), DA_ERR_NOT_FOUND, "FirstBadName");
    EXPECT_ERR(da_processor_kind_from_name("SecondBadName", &kind), DA_ERR_NOT_FOUND, "SecondBadName");
    CHECK(!msg_contains("FirstBadName"), "old message replaced: \"%s\"", da_last_error());
    EXPECT_ERR(da_set_num_threads(-5), DA_ERR_INVALID_ARGUMENT, "-5");
    CHECK(!msg_contains("SecondBadName"), "replaced again: \"%s\"", da_last_error());
    EXPECT_ST(da_processor_kind_from_name("AttnProcessor", &kind), DA_OK);
    CHECK(da_last_error()[0] == '\0', "message cleared after a successful call: \"%s\"", da_last_error());
}

/* ---- concurrent forwards ------------------------------------------------------------------ */

enum { TB = 2, TL = 200, TC = 64, NTHREADS = 4, ITERS = 3 };

typedef struct {
    da_attention a;
    const float *x;
    float *out[ITERS];
    da_status status[ITERS];
    int32_t processor; /* 0: leave as is */
} fwd_job;

static void *forward_thread(void *p) {
    fwd_job *j = p;
    tensor_t tx, to;
    int64_t xs[3] = {TB, TL, TC};
    da_forward_args args;
    da_forward_args_init(&args, sizeof args);
    args.hidden_states = tens(&tx, (void *)j->x, 3, xs, NULL);
    for (int it = 0; it < ITERS; it++) j->status[it] = da_attention_forward(j->a, &args, tens(&to, j->out[it], 3, xs, NULL), 1);
    return NULL;
}

static da_attention module_for_threads(int32_t processor) {
    da_attention_config c;
    da_attention_config_init(&c, sizeof c);
    c.query_dim = TC;
    c.heads = 4;
    c.dim_head = 16;
    c.bias = 1;
    c.processor = processor;
    return make_attention(&c, 4242);
}

static void run_concurrent(int shared, int32_t processor) {
    const size_t n = (size_t)TB * TL * TC;
    float *x[NTHREADS], *serial[NTHREADS];
    da_attention handles[NTHREADS] = {0};
    da_attention one = shared ? module_for_threads(processor) : NULL;
    fwd_job jobs[NTHREADS];
    for (int t = 0; t < NTHREADS; t++) {
        x[t] = alloc_floats(n);
        serial[t] = alloc_floats(n);
        fill_det(x[t], n, 1000 + (uint32_t)t, 1.0f); /* each thread its own input */
        handles[t] = shared ? one : module_for_threads(processor);
        if (!handles[t]) return;
        tensor_t tx, to;
        int64_t xs[3] = {TB, TL, TC};
        da_forward_args args;
        da_forward_args_init(&args, sizeof args);
        args.hidden_states = tens(&tx, x[t], 3, xs, NULL);
        if (da_attention_forward(handles[t], &args, tens(&to, serial[t], 3, xs, NULL), 1) != DA_OK)
            CHECK(0, "serial forward: %s", da_last_error());
        memset(&jobs[t], 0, sizeof jobs[t]);
        jobs[t].a = handles[t];
        jobs[t].x = x[t];
        for (int it = 0; it < ITERS; it++) jobs[t].out[it] = alloc_floats(n);
    }
    pthread_t th[NTHREADS];
    for (int t = 0; t < NTHREADS; t++) pthread_create(&th[t], NULL, forward_thread, &jobs[t]);
    for (int t = 0; t < NTHREADS; t++) pthread_join(th[t], NULL);
    int ok_status = 1, ok_bits = 1;
    for (int t = 0; t < NTHREADS; t++)
        for (int it = 0; it < ITERS; it++) {
            ok_status &= jobs[t].status[it] == DA_OK;
            ok_bits &= memcmp(jobs[t].out[it], serial[t], n * sizeof(float)) == 0;
            free(jobs[t].out[it]);
        }
    const char *pname = da_processor_name(processor ? processor : DA_PROCESSOR_ATTN_PROCESSOR_2_0);
    CHECK(ok_status, "%d threads × %d forwards on %s (%s): all DA_OK", NTHREADS, ITERS,
          shared ? "one shared handle" : "own handles", pname);
    CHECK(ok_bits, "%d threads × %d forwards on %s (%s): bitwise equal to serial runs", NTHREADS, ITERS,
          shared ? "one shared handle" : "own handles", pname);
    for (int t = 0; t < NTHREADS; t++) {
        free(x[t]), free(serial[t]);
        if (!shared) da_attention_destroy(handles[t]);
    }
    if (shared) da_attention_destroy(one);
}

/* SDPA from several threads at once into distinct outputs. */
typedef struct {
    const float *q;
    float *out;
    da_status status;
} sdpa_job;

enum { SH = 4, SN = 150, SD = 32 };

static void *sdpa_thread(void *p) {
    sdpa_job *j = p;
    tensor_t tq, tk, tv, to;
    int64_t s[4] = {1, SH, SN, SD};
    j->status = da_scaled_dot_product_attention(tens(&tq, (void *)j->q, 4, s, NULL), tens(&tk, (void *)j->q, 4, s, NULL),
                                                tens(&tv, (void *)j->q, 4, s, NULL), NULL, NULL, tens(&to, j->out, 4, s, NULL));
    return NULL;
}

static void test_concurrent_sdpa(void) {
    const size_t n = (size_t)SH * SN * SD;
    float *q = alloc_floats(n), *ref = alloc_floats(n);
    fill_det(q, n, 55, 1.0f);
    sdpa_job jobs[NTHREADS];
    sdpa_job serial = {q, ref, 0};
    sdpa_thread(&serial);
    pthread_t th[NTHREADS];
    for (int t = 0; t < NTHREADS; t++) {
        jobs[t].q = q;
        jobs[t].out = alloc_floats(n);
        pthread_create(&th[t], NULL, sdpa_thread, &jobs[t]);
    }
    int ok = serial.status == DA_OK;
    for (int t = 0; t < NTHREADS; t++) {
        pthread_join(th[t], NULL);
        ok &= jobs[t].status == DA_OK && memcmp(jobs[t].out, ref, n * sizeof(float)) == 0;
        free(jobs[t].out);
    }
    CHECK(ok, "%d concurrent SDPA calls on shared inputs: DA_OK and bitwise equal to a serial call", NTHREADS);
    free(q), free(ref);
}

/* Create/destroy from several threads at once while others look handles up. */
static void *churn_thread(void *p) {
    int *bad = p;
    for (int i = 0; i < 50; i++) {
        da_attention_config c;
        da_attention_config_init(&c, sizeof c);
        c.query_dim = 8;
        c.heads = 2;
        c.dim_head = 4;
        da_attention a = NULL;
        if (da_attention_create(&c, &a) != DA_OK) {
            (*bad)++;
            continue;
        }
        da_attention_info info;
        info.struct_size = sizeof info;
        if (da_attention_get_info(a, &info) != DA_OK || info.heads != 2) (*bad)++;
        da_attention_destroy(a);
        if (da_attention_get_info(a, &info) != DA_ERR_INVALID_HANDLE) (*bad)++;
    }
    return NULL;
}

static void test_handle_churn(void) {
    pthread_t th[NTHREADS];
    int bad[NTHREADS] = {0};
    for (int t = 0; t < NTHREADS; t++) pthread_create(&th[t], NULL, churn_thread, &bad[t]);
    int total = 0;
    for (int t = 0; t < NTHREADS; t++) {
        pthread_join(th[t], NULL);
        total += bad[t];
    }
    CHECK(total == 0, "concurrent create/get_info/destroy on distinct handles: %d anomalies", total);
}

/* ---- a forked child ------------------------------------------------------------------------ */

/* Runs in a child forked after the parent's worker threads started (they do not exist there). */
static da_status forward_in_child(void *unused) {
    (void)unused;
    alarm(60); /* a hang becomes SIGALRM, reported as a crash */
    da_attention_config cfg;
    da_attention_config_init(&cfg, sizeof cfg);
    cfg.query_dim = 64;
    cfg.heads = 4;
    cfg.dim_head = 16;
    da_attention a = NULL;
    da_status st = da_attention_create(&cfg, &a);
    if (st != DA_OK) return st;
    static float x[2 * 256 * 64], y[2 * 256 * 64];
    for (size_t i = 0; i < sizeof x / sizeof *x; i++) x[i] = (float)(i % 13) / 13.0f;
    int64_t shape[3] = {2, 256, 64};
    tensor_t tx, ty;
    da_forward_args args;
    da_forward_args_init(&args, sizeof args);
    args.hidden_states = tens(&tx, x, 3, shape, NULL);
    st = da_attention_forward(a, &args, tens(&ty, y, 3, shape, NULL), 1);
    da_attention_destroy(a);
    return st;
}

/* ThreadSanitizer ends a multi-threaded process's child that starts threads (die_after_fork). */
#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CAPI_UNDER_TSAN 1
#endif
#endif
#ifdef __SANITIZE_THREAD__
#define CAPI_UNDER_TSAN 1
#endif

static void test_forward_after_fork(void) {
#ifdef CAPI_UNDER_TSAN
    return;
#endif
    da_set_num_threads(2); /* the parent's pool has run jobs (run_concurrent) with a helper thread */
    char msg[512];
    int r = run_isolated(forward_in_child, NULL, msg, sizeof msg);
    CHECK(r == 0, "a forward in a forked child: result %d (%s)", r, msg);
}

void test_threads(void) {
    test_thread_local_errors();
    da_set_num_threads(2);
    run_concurrent(0, DA_PROCESSOR_DEFAULT);
    run_concurrent(1, DA_PROCESSOR_DEFAULT);
    run_concurrent(0, DA_PROCESSOR_ATTN_PROCESSOR);
    run_concurrent(1, DA_PROCESSOR_ATTN_PROCESSOR);
    test_concurrent_sdpa();
    test_handle_churn();
    test_forward_after_fork();
}
