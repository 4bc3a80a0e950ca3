/* Issue 16 from C: the block protocol's output buffers (TaylorSeer lite on a module whose output
 * shape differs from its input), SeaCache and smoothed energy guidance entry points, cache
 * contexts with fields, skip_attention_scores, and misuse of all of them (statuses, no traps).
 * Numbers against diffusers are checked from Python (Tests/python/test_hooks_newer.py,
 * test_sea_cache.py); here the C contract. */
#include <stddef.h>

#include "capi_test.h"

static const char *FLUX = "{\"attention_head_dim\": 8, \"axes_dims_rope\": [2, 2, 4], \"in_channels\": 4, "
                          "\"joint_attention_dim\": 4, \"num_attention_heads\": 1, \"num_layers\": 2, "
                          "\"num_single_layers\": 1, \"patch_size\": 1, \"pooled_projection_dim\": 4}";

static void enter(da_model m, const char *name, int64_t step, int64_t steps, double sigma) {
    da_cache_context c;
    EXPECT_ST(da_cache_context_init(&c, sizeof c), DA_OK);
    c.name = name;
    c.step_index = step;
    c.num_inference_steps = steps;
    c.sigma = sigma;
    EXPECT_ST(da_model_enter_cache_context(m, &c), DA_OK);
}

static void test_output_buffers(void) {
    da_model m = NULL;
    if (!EXPECT_ST(da_model_create("FluxTransformer2DModel", FLUX, &m), DA_OK)) return;
    da_taylorseer_cache_config t;
    EXPECT_ST(da_taylorseer_cache_config_init(&t, sizeof t), DA_OK);
    t.use_lite_mode = 1;
    t.cache_interval = 2;
    t.disable_cache_before_step = 2;
    t.taylor_factors_float32 = 1;
    int64_t hooked = 0;
    EXPECT_ST(da_model_apply_taylorseer_cache(m, &t, &hooked), DA_OK);
    CHECK(hooked == 4, "lite mode hooks 3 blocks and proj_out, got %ld", (long)hooked);
    float x[4 * 8] = {0}, y[4 * 4], o[3][4 * 4];
    int64_t xs[3] = {1, 4, 8}, ys[3] = {1, 4, 4};
    tensor_t tx, ty;
    char letters[8] = {0};
    for (int s = 0; s < 3; s++) {
        da_block_io io;
        da_block_io_init(&io, sizeof io);
        io.hidden_states = tens(&tx, x, 3, xs, NULL);
        io.outputs = tens(&ty, y, 3, ys, NULL);
        io.num_outputs = 1;
        memset(y, 0, sizeof y);
        int32_t run = -1;
        da_model_set_cache_context(m, "cond");
        EXPECT_ST(da_model_module_begin(m, "proj_out", &io, &run), DA_OK);
        letters[s] = run ? 'C' : 'S';
        if (run) {
            for (int k = 0; k < 16; k++) y[k] = (float)(k + 1) * (float)(s + 1);  /* the host's proj_out */
            EXPECT_ST(da_model_module_end(m, "proj_out", &io), DA_OK);
        }
        memcpy(o[s], y, sizeof y);
        da_model_set_cache_context(m, NULL);
    }
    CHECK(!strcmp(letters, "CCS"), "decisions %s", letters);
    /* order 1, float32 factors: the prediction at step 2 continues the last two outputs (spec §3.2) */
    float want[16];
    for (int k = 0; k < 16; k++) want[k] = 2 * o[1][k] - o[0][k];
    CHECK(max_rel_diff(o[2], want, 16) < 1e-6, "prediction at step 2 off by %g", max_rel_diff(o[2], want, 16));
    /* the same prediction cannot go into a 8-channel input in place: a clear shape error */
    da_hook_registry root = NULL;
    da_model_hook_registry(m, "", &root);
    da_hook_registry_reset_stateful_hooks(root, 1);
    da_block_io io;
    da_block_io_init(&io, sizeof io);
    io.hidden_states = tens(&tx, x, 3, xs, NULL);
    int32_t run = 0;
    da_model_set_cache_context(m, "cond");
    for (int s = 0; s < 2; s++) {
        EXPECT_ST(da_model_module_begin(m, "proj_out", &io, &run), DA_OK);
        tensor_t t2;
        io.hidden_states = tens(&t2, y, 3, ys, NULL);  /* old form: the output written back in place */
        EXPECT_ST(da_model_module_end(m, "proj_out", &io), DA_OK);
        io.hidden_states = tens(&tx, x, 3, xs, NULL);
    }
    EXPECT_ERR(da_model_module_begin(m, "proj_out", &io, &run), DA_ERR_SHAPE, "output buffers");
    /* output buffers of the wrong shape for a cached prediction */
    da_hook_registry_reset_stateful_hooks(root, 1);
    io.outputs = tens(&ty, y, 3, ys, NULL);
    io.num_outputs = 1;
    for (int s = 0; s < 2; s++) {
        EXPECT_ST(da_model_module_begin(m, "proj_out", &io, &run), DA_OK);
        EXPECT_ST(da_model_module_end(m, "proj_out", &io), DA_OK);
    }
    float wrong[8];
    int64_t ws[3] = {1, 2, 4};
    tensor_t tw;
    io.outputs = tens(&tw, wrong, 3, ws, NULL);
    EXPECT_ERR(da_model_module_begin(m, "proj_out", &io, &run), DA_ERR_SHAPE, "io.outputs[0]");
    io.num_outputs = 0;
    EXPECT_ERR(da_model_module_begin(m, "proj_out", &io, &run), DA_ERR_INVALID_ARGUMENT, "num_outputs");
    /* the older, shorter struct keeps the in-place form */
    da_block_io old;
    EXPECT_ST(da_block_io_init(&old, offsetof(da_block_io, outputs)), DA_OK);
    CHECK(old.struct_size == offsetof(da_block_io, outputs), "old struct_size %u", old.struct_size);
    EXPECT_ERR(da_block_io_init(&old, 12), DA_ERR_INVALID_ARGUMENT, "struct_size");
    da_model_set_cache_context(m, NULL);
    da_model_destroy(m);
}

static void test_sea_cache_c(void) {
    da_model m = NULL;
    if (!EXPECT_ST(da_model_create("FluxTransformer2DModel", FLUX, &m), DA_OK)) return;
    da_sea_cache_config c;
    EXPECT_ST(da_sea_cache_config_init(&c, sizeof c), DA_OK);
    CHECK(c.threshold == 0.25 && c.residual_order == 1 && c.max_consecutive_cached == 2 && c.power_exp == 3.0,
          "defaults %g %d %d %g", c.threshold, c.residual_order, c.max_consecutive_cached, c.power_exp);
    float lat[64];
    fill_det(lat, 64, 7, 1.0f);
    int64_t ls[4] = {4, 1, 4, 4};
    tensor_t tl;
    EXPECT_ERR(da_model_set_raw_vision(m, tens(&tl, lat, 4, ls, NULL), 1), DA_ERR_STATE, "SeaCache is not applied");
    c.threshold = -1;
    EXPECT_ERR(da_model_apply_sea_cache(m, &c, NULL), DA_ERR_VALUE, "`threshold` must be non-negative, got -1.0");
    c.threshold = 0.25;
    c.residual_order = 2;
    EXPECT_ERR(da_model_apply_sea_cache(m, &c, NULL), DA_ERR_VALUE, "`residual_order` must be 0 or 1, got 2.");
    c.residual_order = 1;
    EXPECT_ST(da_model_enable_cache(m, DA_CACHE_SEA, &c), DA_OK);
    int32_t kind = 0;
    da_model_enabled_cache(m, &kind);
    CHECK(kind == DA_CACHE_SEA, "enabled kind %d", kind);
    int64_t bad[3] = {4, 4, 4};
    EXPECT_ERR(da_model_set_raw_vision(m, tens(&tl, lat, 3, bad, NULL), 1), DA_ERR_SHAPE, "(C, T, H, W)");
    EXPECT_ERR(da_model_set_raw_vision(m, NULL, 2), DA_ERR_INVALID_ARGUMENT, "latents is NULL");
    /* without scheduler fields every call runs in full (diffusers' fail-open) */
    float h[4 * 8], e[2 * 8];
    int64_t hs[3] = {1, 4, 8}, es[3] = {1, 2, 8};
    tensor_t th, te;
    da_block_io io;
    da_block_io_init(&io, sizeof io);
    io.hidden_states = tens(&th, h, 3, hs, NULL);
    io.encoder_hidden_states = tens(&te, e, 3, es, NULL);
    int all_run = 1;
    for (int s = 0; s < 4; s++) {
        enter(m, "cond", -1, -1, NAN);
        EXPECT_ST(da_model_set_raw_vision(m, tens(&tl, lat, 4, ls, NULL), 1), DA_OK);
        int32_t run = 0;
        EXPECT_ST(da_model_module_begin(m, "transformer_blocks.0", &io, &run), DA_OK);
        all_run &= run;
        enter(m, NULL, -1, -1, NAN);
    }
    CHECK(all_run, "fail-open calls all run");
    /* the SEA filter alone: (C, T, H, W) -> (T, H, W, C); a constant latent stays constant */
    float ones[64], out[64];
    for (int k = 0; k < 64; k++) ones[k] = 1.0f;
    int64_t os[4] = {1, 4, 4, 4};
    tensor_t to;
    EXPECT_ST(da_sea_filter(tens(&tl, ones, 4, ls, NULL), 0.5, 3.0, tens(&to, out, 4, os, NULL)), DA_OK);
    int constant = 1;
    for (int k = 1; k < 64; k++) constant &= fabsf(out[k] - out[0]) < 1e-5f * fabsf(out[0]);
    CHECK(constant, "filtered constant latent not constant");
    EXPECT_ERR(da_sea_filter(tens(&tl, ones, 4, ls, NULL), 0.5, 0.0, tens(&to, out, 4, os, NULL)), DA_ERR_VALUE, "power_exp");
    EXPECT_ST(da_model_disable_cache(m), DA_OK);
    da_model_destroy(m);
}

static void test_seg_and_scores(void) {
    da_model m = NULL;
    if (!EXPECT_ST(da_model_create("FluxTransformer2DModel", FLUX, &m), DA_OK)) return;
    da_smoothed_energy_guidance_config g;
    EXPECT_ST(da_smoothed_energy_guidance_config_init(&g, sizeof g), DA_OK);
    int64_t idx[1] = {0};
    g.indices = idx;
    g.num_indices = 1;
    int64_t hooked = 0;
    EXPECT_ST(da_model_apply_smoothed_energy_guidance(m, &g, 9999999.0, &hooked), DA_OK);  /* diffusers fails here */
    CHECK(hooked == 1, "Flux block 0: one query projection, got %ld", (long)hooked);
    idx[0] = 9;
    EXPECT_ERR(da_model_apply_smoothed_energy_guidance(m, &g, 1.0, &hooked), DA_ERR_VALUE, "Could not find any transformer blocks");
    idx[0] = 0;
    EXPECT_ERR(da_model_apply_smoothed_energy_guidance(m, &g, -1.0, &hooked), DA_ERR_VALUE, "blur_sigma");
    g.mapping = 7;
    EXPECT_ERR(da_model_apply_smoothed_energy_guidance(m, &g, 1.0, &hooked), DA_ERR_INVALID_ARGUMENT, "mapping");
    EXPECT_ST(da_model_remove_smoothed_energy_guidance(m), DA_OK);
    /* the mean branch (diffusers 0.42.1, finite sigma): the first n^2 tokens of each channel become
     * their mean, the rest stay */
    float q[1 * 5 * 2], o[10];
    for (int k = 0; k < 10; k++) q[k] = (float)k;
    int64_t qs[3] = {1, 5, 2};
    tensor_t tq, to;
    EXPECT_ST(da_seg_blur_query(tens(&tq, q, 3, qs, NULL), 2.0, DA_SEG_DIFFUSERS_0_42_1, tens(&to, o, 3, qs, NULL)), DA_OK);
    CHECK(o[0] == 3.0f && o[6] == 3.0f && o[1] == 4.0f && o[8] == 8.0f && o[9] == 9.0f, "mean branch %g %g %g %g", o[0], o[6], o[1], o[8]);
    int64_t q2[2] = {5, 2};
    EXPECT_ERR(da_seg_blur_query(tens(&tq, q, 2, q2, NULL), 2.0, 0, tens(&to, o, 2, q2, NULL)), DA_ERR_SHAPE, "(batch, tokens, channels)");
    /* skip_attention_scores is implemented now */
    da_layer_skip_config ls;
    EXPECT_ST(da_layer_skip_config_init(&ls, sizeof ls), DA_OK);
    ls.indices = idx;
    ls.num_indices = 1;
    ls.skip_attention = 0;
    ls.skip_attention_scores = 1;
    ls.skip_ff = 0;
    EXPECT_ST(da_model_apply_layer_skip(m, &ls, &hooked), DA_OK);
    CHECK(hooked == 1, "scores-skip hooks, got %ld", (long)hooked);
    ls.dropout = 0.5;
    EXPECT_ERR(da_model_apply_layer_skip(m, &ls, &hooked), DA_ERR_VALUE, "dropout");
    /* cache contexts with fields: misuse */
    da_cache_context c;
    EXPECT_ST(da_cache_context_init(&c, sizeof c), DA_OK);
    CHECK(c.step_index == -1 && c.num_inference_steps == -1 && isnan(c.sigma) && isnan(c.timestep), "context defaults");
    c.step_index = -5;
    EXPECT_ERR(da_model_enter_cache_context(m, &c), DA_ERR_INVALID_ARGUMENT, "step_index");
    EXPECT_ERR(da_model_enter_cache_context(m, NULL), DA_ERR_INVALID_ARGUMENT, "context");
    da_model_destroy(m);
}

void test_hooks_newer(void) {
    test_output_buffers();
    test_sea_cache_c();
    test_seg_and_scores();
}
