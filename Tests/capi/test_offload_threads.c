/* Group offloading under concurrency (issue 18, item 1): threads running different attention
 * modules of one offloaded model get DA_OK and the outputs of serial runs (a group in use stays
 * resident until every call using it has ended), and a mixed stress of forwards, offloading
 * on/off, caches on/off and processor changes on shared and separate models neither crashes nor
 * corrupts an output. The thread-safety rule tested is the header's (include/diffattn.h, "Thread
 * safety"): forwards and other read-only calls on one model may overlap; calls that change a model
 * must not overlap other calls on it, so this test serialises those on a shared model with its own
 * read-write lock, as a host would. Runs under ThreadSanitizer in `make sanitize-thread`. */
#include <pthread.h>

#include "capi_test.h"

static const char *FLUX2 = "{\"attention_head_dim\": 8, \"axes_dims_rope\": [2, 2, 4], \"in_channels\": 4, "
                           "\"joint_attention_dim\": 4, \"num_attention_heads\": 1, \"num_layers\": 2, "
                           "\"num_single_layers\": 1, \"patch_size\": 1, \"pooled_projection_dim\": 4}";

enum { OL = 16, OS = 4, OC = 8, OT = 4, OITERS = 150, NPATHS = 3 };
static const char *const PATHS[NPATHS] = {"transformer_blocks.0.attn", "transformer_blocks.1.attn",
                                          "single_transformer_blocks.0.attn"};

static float OX[OL * OC], OE[OS * OC];

/* One forward of `path`: the joint blocks return (hidden, encoder), the single block one tensor. */
static da_status forward_path(da_model m, int p, float *h, float *e) {
    da_attention a = NULL;
    da_status st = da_model_get_attention(m, PATHS[p], &a);
    if (st != DA_OK) return st;
    tensor_t tx, te, to[2];
    int64_t xs[3] = {1, OL, OC}, es[3] = {1, OS, OC};
    da_forward_args args;
    da_forward_args_init(&args, sizeof args);
    args.hidden_states = tens(&tx, OX, 3, xs, NULL);
    if (p < 2) args.encoder_hidden_states = tens(&te, OE, 3, es, NULL);
    DLTensor outs[2] = {*tens(&to[0], h, 3, xs, NULL), *tens(&to[1], e, 3, es, NULL)};
    return da_attention_forward(a, &args, outs, p < 2 ? 2 : 1);
}

static da_model flux_model(void) {
    da_model m = NULL;
    if (da_model_create("FluxTransformer2DModel", FLUX2, &m) != DA_OK) {
        CHECK(0, "flux model: %s", da_last_error());
        return NULL;
    }
    return m;
}

static da_status enable_offload(da_model m, int use_stream) {
    da_group_offload_config c;
    da_group_offload_config_init(&c, sizeof c);
    c.num_blocks_per_group = 1;
    c.use_stream = use_stream;
    return da_model_enable_group_offload(m, "cpu", &c);
}

/* ---- two threads, two blocks of one offloaded model (the reproduction) ---------------- */

typedef struct {
    da_model m;
    int p;
    const float *ref_h, *ref_e;
    pthread_barrier_t *start;
    int bad_status, wrong;
    char first_error[256];
} pair_job;

static void *pair_thread(void *v) {
    pair_job *j = v;
    float h[OL * OC], e[OS * OC];
    pthread_barrier_wait(j->start);
    for (int it = 0; it < OITERS; it++) {
        da_status st = forward_path(j->m, j->p, h, e);
        if (st != DA_OK) {
            if (!j->bad_status++) snprintf(j->first_error, sizeof j->first_error, "%s: %s", da_status_name(st), da_last_error());
            continue;
        }
        if (memcmp(h, j->ref_h, sizeof h) != 0 || (j->p < 2 && memcmp(e, j->ref_e, sizeof e) != 0)) j->wrong++;
    }
    return NULL;
}

static void run_pair(int use_stream) {
    da_model m = flux_model();
    if (!m) return;
    float ref_h[NPATHS][OL * OC], ref_e[NPATHS][OS * OC];
    for (int p = 0; p < NPATHS; p++) EXPECT_ST(forward_path(m, p, ref_h[p], ref_e[p]), DA_OK);
    if (EXPECT_ST(enable_offload(m, use_stream), DA_OK) == 0) { da_model_destroy(m); return; }
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, OT);
    pair_job jobs[OT];
    pthread_t th[OT];
    for (int t = 0; t < OT; t++) {
        int p = t % NPATHS;
        jobs[t] = (pair_job){.m = m, .p = p, .ref_h = ref_h[p], .ref_e = ref_e[p], .start = &start};
        pthread_create(&th[t], NULL, pair_thread, &jobs[t]);
    }
    int bad = 0, wrong = 0;
    const char *first = "";
    for (int t = 0; t < OT; t++) {
        pthread_join(th[t], NULL);
        bad += jobs[t].bad_status, wrong += jobs[t].wrong;
        if (!*first && jobs[t].bad_status) first = jobs[t].first_error;
    }
    pthread_barrier_destroy(&start);
    CHECK(bad == 0, "%d threads × %d forwards of blocks of one offloaded Flux (use_stream %d): all DA_OK (%d failed; first: %s)",
          OT, OITERS, use_stream, bad, first);
    CHECK(wrong == 0, "... and every output bitwise equal to the serial run before offloading (%d differ)", wrong);
    da_group_offload_stats s = {.struct_size = sizeof s};
    EXPECT_ST(da_model_group_offload_stats(m, &s), DA_OK);
    CHECK(s.resident_groups <= s.groups, "stats consistent after the threads: %lld of %lld groups resident",
          (long long)s.resident_groups, (long long)s.groups);
    EXPECT_ST(da_model_disable_group_offload(m), DA_OK);
    float h[OL * OC], e[OS * OC];
    EXPECT_ST(forward_path(m, 0, h, e), DA_OK);
    CHECK(memcmp(h, ref_h[0], sizeof h) == 0, "model whole after disabling offloading");
    da_model_destroy(m);
}

/* ---- mixed stress ------------------------------------------------------------------------------ */

typedef struct {
    da_model shared;
    pthread_rwlock_t *gate; /* the host's rule: changes of the shared model exclusive */
    const float (*ref_h)[OL * OC];
    int id;
    int crashes_or_bad, wrong, calls;
    char first_error[256];
} mix_job;

static void note(mix_job *j, da_status st, const char *what) {
    if (st == DA_OK) return;
    if (!j->crashes_or_bad++) snprintf(j->first_error, sizeof j->first_error, "%s: %s %s", what, da_status_name(st), da_last_error());
}

/* A change of `m`: offloading on/off, FirstBlockCache on/off, processor reset. Statuses are
 * checked against the model's state, which only this thread changes for its own model and which
 * the gate makes consistent for the shared one. */
static void change(mix_job *j, da_model m, int r) {
    switch (r % 3) {
    case 0: {
        da_group_offload_stats s = {.struct_size = sizeof s};
        if (da_model_group_offload_stats(m, &s) == DA_OK) note(j, da_model_disable_group_offload(m), "disable offload");
        else note(j, enable_offload(m, r & 4 ? 1 : 0), "enable offload");
        break;
    }
    case 1: {
        int32_t kind = 0;
        note(j, da_model_enabled_cache(m, &kind), "enabled_cache");
        if (kind != DA_CACHE_NONE) note(j, da_model_disable_cache(m), "disable cache");
        else {
            da_first_block_cache_config fbc;
            da_first_block_cache_config_init(&fbc, sizeof fbc);
            note(j, da_model_enable_cache(m, DA_CACHE_FIRST_BLOCK, &fbc), "enable cache");
        }
        break;
    }
    default: {
        da_processor_config pc;
        note(j, da_processor_config_init(&pc, sizeof pc, DA_PROCESSOR_FLUX_ATTN_PROCESSOR_2_0), "processor config");
        note(j, da_model_set_attn_processor(m, &pc), "set processor");
    }
    }
    j->calls++;
}

static void *mix_thread(void *v) {
    mix_job *j = v;
    da_model own = flux_model();
    if (!own) return NULL;
    float h[OL * OC], e[OS * OC];
    uint32_t r = 12345u + (uint32_t)j->id * 7919u;
    for (int it = 0; it < OITERS; it++) {
        r = r * 1103515245u + 12345u;
        uint32_t what = (r >> 8) % 8, p = (r >> 12) % NPATHS;
        if (what < 5) { /* forwards: the shared model under the read side, the own model freely */
            da_model m = what & 1 ? own : j->shared;
            if (m == j->shared) pthread_rwlock_rdlock(j->gate);
            da_status st = forward_path(m, (int)p, h, e);
            if (m == j->shared) pthread_rwlock_unlock(j->gate);
            note(j, st, PATHS[p]);
            if (st == DA_OK && memcmp(h, j->ref_h[p], sizeof h) != 0) j->wrong++;
            j->calls++;
        } else if (what < 7) {
            change(j, own, (int)(r >> 16));
        } else {
            pthread_rwlock_wrlock(j->gate);
            change(j, j->shared, (int)(r >> 16));
            pthread_rwlock_unlock(j->gate);
        }
    }
    da_model_destroy(own);
    return NULL;
}

static void run_mixed(void) {
    da_model shared = flux_model();
    if (!shared) return;
    float ref_h[NPATHS][OL * OC], ref_e[NPATHS][OS * OC];
    for (int p = 0; p < NPATHS; p++) EXPECT_ST(forward_path(shared, p, ref_h[p], ref_e[p]), DA_OK);
    EXPECT_ST(enable_offload(shared, 0), DA_OK);
    pthread_rwlock_t gate;
    pthread_rwlock_init(&gate, NULL);
    enum { MT = 6 };
    mix_job jobs[MT];
    pthread_t th[MT];
    for (int t = 0; t < MT; t++) {
        jobs[t] = (mix_job){.shared = shared, .gate = &gate, .ref_h = (const float (*)[OL * OC])ref_h, .id = t};
        pthread_create(&th[t], NULL, mix_thread, &jobs[t]);
    }
    int bad = 0, wrong = 0, calls = 0;
    const char *first = "";
    for (int t = 0; t < MT; t++) {
        pthread_join(th[t], NULL);
        bad += jobs[t].crashes_or_bad, wrong += jobs[t].wrong, calls += jobs[t].calls;
        if (!*first && jobs[t].crashes_or_bad) first = jobs[t].first_error;
    }
    pthread_rwlock_destroy(&gate);
    CHECK(bad == 0, "%d threads, %d mixed calls (forward, offload on/off, cache on/off, set processor) on a shared and "
          "own models: all DA_OK (%d failed; first: %s)", MT, calls, bad, first);
    CHECK(wrong == 0, "... every forward output bitwise equal to the serial run (%d differ)", wrong);
    da_model_destroy(shared);
}

void test_offload_threads(void) {
    memset(OX, 0, sizeof OX);
    fill_det(OX, OL * OC, 77, 1.0f);
    fill_det(OE, OS * OC, 78, 1.0f);
    run_pair(0);
    run_pair(1);
    run_mixed();
}
