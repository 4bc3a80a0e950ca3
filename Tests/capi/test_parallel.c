/* Context parallelism through in-process communicators (one thread per rank): the shared cases of
 * Tests/mpi/cp_cases.c for 2 and 4 ranks, byte counters against the ring's message sizes, the
 * link-delay overlap, and handle errors. */
#include <pthread.h>

#include "../mpi/cp_cases.h"
#include "capi_test.h"

typedef struct {
    da_communicator comm;
    int failures, passes;
} rank_job;

static void *run_rank(void *arg) {
    rank_job *job = arg;
    job->failures = cp_run_cases(job->comm, &job->passes);
    return NULL;
}

static void run_world(int n) {
    da_communicator comms[4];
    EXPECT_ST(da_communicator_create_local(n, comms), DA_OK);
    pthread_t threads[4];
    rank_job jobs[4];
    for (int i = 0; i < n; i++) {
        jobs[i] = (rank_job){comms[i], 0, 0};
        pthread_create(&threads[i], NULL, run_rank, &jobs[i]);
    }
    for (int i = 0; i < n; i++) pthread_join(threads[i], NULL);
    for (int i = 0; i < n; i++) {
        CHECK(jobs[i].failures == 0 && jobs[i].passes > 20, "%d in-process ranks, rank %d: %d passed, %d failed",
              n, i, jobs[i].passes, jobs[i].failures);
        da_communicator_destroy(comms[i]);
    }
}

typedef struct {
    da_communicator comm;
    int n, D;
    float *q;
    da_status st;
} ring_job;

static void *ring_rank(void *arg) {
    ring_job *j = arg;
    int64_t s[4] = {1, 2, j->n, j->D};
    tensor_t a, b, c, o;
    float *out = alloc_floats((size_t)2 * j->n * j->D);
    da_context_parallel_config cfg;
    da_context_parallel_config_init(&cfg, sizeof cfg);
    int32_t rank, size;
    da_communicator_rank(j->comm, &rank, &size);
    cfg.ring_degree = size;
    j->st = da_context_parallel_attention(j->comm, &cfg, tens(&a, j->q, 4, s, NULL), tens(&b, j->q, 4, s, NULL),
                                          tens(&c, j->q, 4, s, NULL), NULL, tens(&o, out, 4, s, NULL));
    free(out);
    return NULL;
}

void test_parallel(void) {
    run_world(2);
    run_world(4);

    /* Byte counters: a ring of 3 sends 2 K/V blocks plus one 384-byte descriptor to each peer. */
    enum { P = 3, N = 16, D = 8 };
    da_communicator comms[P];
    EXPECT_ST(da_communicator_create_local(P, comms), DA_OK);
    float *q = alloc_floats(2 * N * D);
    fill_det(q, 2 * N * D, 9, 1.0f);
    ring_job jobs[P];
    pthread_t threads[P];
    for (int i = 0; i < P; i++) {
        jobs[i] = (ring_job){comms[i], N, D, q, -1};
        pthread_create(&threads[i], NULL, ring_rank, &jobs[i]);
    }
    for (int i = 0; i < P; i++) pthread_join(threads[i], NULL);
    int64_t sent = 0, received = 0;
    double waiting = -1;
    EXPECT_ST(da_communicator_counters(comms[1], &sent, &received, &waiting), DA_OK);
    int64_t block = 2 * N * (D + D) * 4, want = (P - 1) * block + (P - 1) * 384;
    CHECK(jobs[0].st == DA_OK && jobs[1].st == DA_OK && jobs[2].st == DA_OK, "ring of 3: statuses %d %d %d",
          jobs[0].st, jobs[1].st, jobs[2].st);
    CHECK(sent == want && received == want && waiting >= 0, "ring of 3: sent %lld received %lld, want %lld",
          (long long)sent, (long long)received, (long long)want);
    EXPECT_ST(da_communicator_reset_counters(comms[1]), DA_OK);
    EXPECT_ST(da_communicator_counters(comms[1], &sent, NULL, NULL), DA_OK);
    CHECK(sent == 0, "counters reset: %lld", (long long)sent);
    for (int i = 0; i < P; i++) da_communicator_destroy(comms[i]);
    free(q);

    /* Handle and argument errors. */
    int32_t r, s;
    EXPECT_ERR(da_communicator_rank(comms[0], &r, &s), DA_ERR_INVALID_HANDLE, "da_communicator");
    EXPECT_ERR(da_communicator_create_local(0, comms), DA_ERR_INVALID_ARGUMENT, "n must be");
    EXPECT_ERR(da_communicator_create_local(2, NULL), DA_ERR_INVALID_ARGUMENT, "out_array");
    EXPECT_ERR(da_communicator_create_local_with_link(2, -1, 0, comms), DA_ERR_INVALID_ARGUMENT, "latency");
    EXPECT_ERR(da_context_parallel_attention(NULL, NULL, NULL, NULL, NULL, NULL, NULL), DA_ERR_INVALID_HANDLE, "comm");
    int64_t begin = -1, count = -1;
    EXPECT_ST(da_context_parallel_shard_range(12, 4, 3, &begin, &count), DA_OK);
    CHECK(begin == 9 && count == 3, "shard_range(12, 4, 3) = [%lld, +%lld)", (long long)begin, (long long)count);
    EXPECT_ERR(da_context_parallel_shard_range(10, 4, 0, &begin, &count), DA_ERR_SHAPE, "not divisible");
    EXPECT_ERR(da_context_parallel_shard_range(12, 4, 4, &begin, &count), DA_ERR_INVALID_ARGUMENT, "out of range");
    /* A rank whose peer never calls: DA_ERR_IO naming the silent rank after the timeout, not a hang. */
    da_communicator pair[2];
    EXPECT_ST(da_communicator_create_local(2, pair), DA_OK);
    EXPECT_ST(da_communicator_set_timeout(pair[0], 0.3), DA_OK);
    {
        float x[2 * 4 * 8] = {0}, o[2 * 4 * 8];
        int64_t sh[4] = {1, 2, 4, 8};
        tensor_t a, b2, c2, d2;
        da_context_parallel_config cfg;
        da_context_parallel_config_init(&cfg, sizeof cfg);
        cfg.ring_degree = 2;
        EXPECT_ERR(da_context_parallel_attention(pair[0], &cfg, tens(&a, x, 4, sh, NULL), tens(&b2, x, 4, sh, NULL),
                                                 tens(&c2, x, 4, sh, NULL), NULL, tens(&d2, o, 4, sh, NULL)),
                   DA_ERR_IO, "no message from rank 1");
    }
    da_communicator_destroy(pair[0]);
    da_communicator_destroy(pair[1]);
    /* A single rank: timeouts are settable, and a one-rank "parallel" call is plain attention. */
    da_communicator one;
    EXPECT_ST(da_communicator_create_local(1, &one), DA_OK);
    EXPECT_ERR(da_communicator_set_timeout(one, 0), DA_ERR_INVALID_ARGUMENT, "seconds");
    EXPECT_ST(da_communicator_set_timeout(one, 3), DA_OK);
    da_communicator_destroy(one);
    da_communicator_destroy(NULL);
}
