/* libFuzzer target: what landed after the first campaign (issue 18, item 8) — group offloading
 * (memory and disk, block and leaf level, prefetch thread), the caches (enable/disable with fuzzed
 * thresholds), cache contexts, steps, the block protocol (da_model_module_begin/end with fuzzed
 * paths and tensors), attention forwards inside and outside steps — as a byte-stream program over
 * one tiny FluxTransformer2DModel (re-created when the input asks). Every call must return a status
 * with a message (fuzz_common.h); after each input the offloading and cache are removed and a plain
 * forward must give the same output as before the input, so no sequence leaves the model broken. */
#define _GNU_SOURCE
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz_common.h"

static const char *FLUX = "{\"attention_head_dim\": 8, \"axes_dims_rope\": [2, 2, 4], \"in_channels\": 4, "
                          "\"joint_attention_dim\": 4, \"num_attention_heads\": 1, \"num_layers\": 2, "
                          "\"num_single_layers\": 1, \"patch_size\": 1, \"pooled_projection_dim\": 4}";
static const char *PATHS[] = {"transformer_blocks.0.attn", "transformer_blocks.1.attn", "single_transformer_blocks.0.attn",
                              "transformer_blocks.0", "transformer_blocks.1", "single_transformer_blocks.0", "", "nope",
                              "transformer_blocks", "transformer_blocks.0.attn.to_q"};
enum { NP = sizeof PATHS / sizeof *PATHS, L = 4, S = 2, C = 8 };

static da_model model;

typedef struct {
    DLTensor t;
    int64_t shape[4];
} tensor_t;

static DLTensor *tens_out(tensor_t *x, float *data, int ndim, const int64_t *shape) {
    memset(x, 0, sizeof *x);
    memcpy(x->shape, shape, (size_t)ndim * sizeof *shape);
    x->t.data = data;
    x->t.device.device_type = kDLCPU;
    x->t.ndim = ndim;
    x->t.dtype.code = kDLFloat;
    x->t.dtype.bits = 32;
    x->t.dtype.lanes = 1;
    x->t.shape = x->shape;
    return &x->t;
}
#define tens_const(x, data, ndim, shape) tens_out((x), (float *)(data), (ndim), (shape))
static char disk[64];
static float X[L * C], E[S * C], REF[L * C];

static da_status forward(int p, float *h) {
    da_attention a = NULL;
    da_status st = da_model_get_attention(model, PATHS[p], &a);
    if (st != DA_OK) return st;
    float e[S * C];
    tensor_t tx, te, to[2];
    int64_t xs[3] = {1, L, C}, es[3] = {1, S, C};
    da_forward_args args;
    da_forward_args_init(&args, sizeof args);
    args.hidden_states = tens_const(&tx, X, 3, xs);
    if (p < 2) args.encoder_hidden_states = tens_const(&te, E, 3, es);
    DLTensor outs[2];
    outs[0] = *tens_out(&to[0], h, 3, xs);
    outs[1] = *tens_out(&to[1], e, 3, es);
    return da_attention_forward(a, &args, outs, p < 2 ? 2 : 1);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    da_set_num_threads(1);
    snprintf(disk, sizeof disk, "%s", "/tmp/diffattn-fuzz-hooks-XXXXXX");
    if (!mkdtemp(disk)) abort();
    for (int i = 0; i < L * C; i++) X[i] = (float)((i * 37) % 17) / 8.0f - 1.0f;
    for (int i = 0; i < S * C; i++) E[i] = (float)((i * 11) % 13) / 6.0f - 1.0f;
    if (da_model_create("FluxTransformer2DModel", FLUX, &model) != DA_OK || forward(0, REF) != DA_OK) {
        fprintf(stderr, "fixture model: %s\n", da_last_error());
        abort();
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fz_t f = {data, size, 0};
    float h[L * C], hb[L * C], eb[S * C];
    for (int ops = 0; fz_more(&f) && ops < 64; ops++) {
        int op = fz_range(&f, 12);
        switch (op) {
        case 0: { /* group offloading */
            da_group_offload_config c;
            da_group_offload_config_init(&c, sizeof c);
            c.offload_type = fz_range(&f, 3); /* 2 = invalid */
            c.num_blocks_per_group = fz_small(&f, 3);
            c.use_stream = fz_bool(&f);
            c.offload_to_disk_path = fz_bool(&f) ? disk : NULL;
            fz_check_status(da_model_enable_group_offload(model, fz_bool(&f) ? "cpu" : "cuda", &c), "enable_group_offload");
            break;
        }
        case 1: fz_check_status(da_model_disable_group_offload(model), "disable_group_offload"); break;
        case 2: {
            int kind = fz_range(&f, 8);
            da_first_block_cache_config fb;
            da_mag_cache_config mc;
            da_teacache_config tc;
            da_taylorseer_cache_config ts;
            const void *cfg = NULL;
            if (kind == DA_CACHE_FIRST_BLOCK) { da_first_block_cache_config_init(&fb, sizeof fb); fb.threshold = fz_u8(&f) / 64.0; cfg = &fb; }
            if (kind == DA_CACHE_MAG) { da_mag_cache_config_init(&mc, sizeof mc); mc.num_inference_steps = fz_small(&f, 6); mc.calibrate = 1; cfg = &mc; }
            if (kind == DA_CACHE_TEA) { da_teacache_config_init(&tc, sizeof tc); tc.num_inference_steps = fz_small(&f, 6); cfg = &tc; }
            if (kind == DA_CACHE_TAYLORSEER) { da_taylorseer_cache_config_init(&ts, sizeof ts); ts.cache_interval = fz_small(&f, 3); ts.disable_cache_before_step = fz_small(&f, 2); cfg = &ts; }
            fz_check_status(da_model_enable_cache(model, kind, fz_bool(&f) ? cfg : NULL), "enable_cache");
            break;
        }
        case 3: fz_check_status(da_model_disable_cache(model), "disable_cache"); break;
        case 4: fz_check_status(da_model_set_cache_context(model, fz_bool(&f) ? "cond" : (fz_bool(&f) ? "uncond" : NULL)), "set_cache_context"); break;
        case 5: fz_check_status(da_model_begin_step(model, 1000.0 - fz_u8(&f) * 4.0), "begin_step"); break;
        case 6: fz_check_status(da_model_end_step(model), "end_step"); break;
        case 7: fz_check_status(forward(fz_range(&f, NP), h), "attention_forward"); break;
        case 8: case 9: { /* block protocol */
            int p = fz_range(&f, NP);
            int64_t hs[3] = {1, L, C}, es[3] = {1, S, C};
            memcpy(hb, X, sizeof hb);
            memcpy(eb, E, sizeof eb);
            tensor_t th, te;
            da_block_io io;
            da_block_io_init(&io, sizeof io);
            io.hidden_states = fz_bool(&f) ? tens_out(&th, hb, 3, hs) : NULL;
            io.encoder_hidden_states = fz_bool(&f) ? tens_out(&te, eb, 3, es) : NULL;
            int32_t run = -1;
            if (op == 8) fz_check_status(da_model_module_begin(model, PATHS[p], &io, &run), "module_begin");
            else fz_check_status(da_model_module_end(model, PATHS[p], &io), "module_end");
            break;
        }
        case 10: { /* a user hook registry entered and left */
            da_hook_registry r = NULL;
            if (da_model_hook_registry(model, PATHS[fz_range(&f, NP)], &r) == DA_OK) {
                fz_check_status(da_hook_registry_enter(r), "registry_enter");
                fz_check_status(da_hook_registry_exit(r), "registry_exit");
            }
            break;
        }
        default: { /* read a weight of an offloaded module */
            float w[C * C];
            tensor_t tw;
            int64_t ws[2] = {C, C};
            fz_check_status(da_model_get_weight(model, fz_bool(&f) ? "transformer_blocks.1.attn.to_q.weight" : "nope.weight",
                                                tens_out(&tw, w, 2, ws)), "get_weight");
        }
        }
    }
    /* the model is whole again once offloading and caches are gone and no step is open */
    da_model_end_step(model);
    da_model_disable_cache(model);
    if (da_model_disable_group_offload(model) != DA_OK) { fprintf(stderr, "disable offload: %s\n", da_last_error()); abort(); }
    if (forward(0, h) != DA_OK || memcmp(h, REF, sizeof h) != 0) {
        fprintf(stderr, "model broken after the input: %s\n", da_last_error());
        abort();
    }
    return 0;
}
