/* Caches through the C API: the block protocol (FirstBlockCache skipping the rest of the stack and
 * adding the cached tail residual), layer skip, enable/disable_cache, and misuse at the boundary
 * (NULL and malformed arguments fail with a status; nothing traps). */
#include "capi_test.h"

static const char *FLUX = "{\"attention_head_dim\": 8, \"axes_dims_rope\": [2, 2, 4], \"in_channels\": 4, "
                          "\"joint_attention_dim\": 4, \"num_attention_heads\": 1, \"num_layers\": 2, "
                          "\"num_single_layers\": 1, \"patch_size\": 1, \"pooled_projection_dim\": 4}";

/* One denoising step: block i adds `scale[i]` to every hidden value and 1 to the encoder's.
 * Returns the decisions as a string "CSS" (C = ran). */
static void run_step(da_model m, const float *scale, float *h, float *e, char *decisions) {
    int64_t hs[3] = {1, 4, 8}, es[3] = {1, 2, 8}, n = 0;
    tensor_t th, te;
    da_block_io io;
    da_block_io_init(&io, sizeof io);
    io.hidden_states = tens(&th, h, 3, hs, NULL);
    io.encoder_hidden_states = tens(&te, e, 3, es, NULL);
    da_model_transformer_block_count(m, &n);
    for (int64_t i = 0; i < n; i++) {
        const char *path = NULL;
        int32_t run = -1;
        EXPECT_ST(da_model_transformer_block_path(m, i, &path), DA_OK);
        EXPECT_ST(da_model_module_begin(m, path, &io, &run), DA_OK);
        decisions[i] = run ? 'C' : 'S';
        if (!run) continue;
        for (int k = 0; k < 32; k++) h[k] += scale[i];
        for (int k = 0; k < 16; k++) e[k] += 1.0f;
        EXPECT_ST(da_model_module_end(m, path, &io), DA_OK);
    }
    decisions[n] = '\0';
}

static void test_first_block_cache_protocol(void) {
    da_model m = NULL;
    if (EXPECT_ST(da_model_create("FluxTransformer2DModel", FLUX, &m), DA_OK) == 0) return;
    da_first_block_cache_config fbc;
    EXPECT_ST(da_first_block_cache_config_init(&fbc, sizeof fbc), DA_OK);
    CHECK(fbc.threshold == 0.05, "default threshold %g", fbc.threshold);
    fbc.threshold = 0.1;
    EXPECT_ST(da_model_enable_cache(m, DA_CACHE_FIRST_BLOCK, &fbc), DA_OK);
    int32_t kind = -1;
    EXPECT_ST(da_model_enabled_cache(m, &kind), DA_OK);
    CHECK(kind == DA_CACHE_FIRST_BLOCK, "kind %d", kind);
    EXPECT_ERR(da_model_enable_cache(m, DA_CACHE_FIRST_BLOCK, &fbc), DA_ERR_VALUE, "already been enabled");

    float h[32], e[16], h2[32], e2[16];
    char d[8];
    const float step1[3] = {1.0f, 2.0f, 3.0f}, step2[3] = {1.02f, 5.0f, 5.0f};
    for (int k = 0; k < 32; k++) h[k] = h2[k] = (float)k * 0.1f;
    for (int k = 0; k < 16; k++) e[k] = e2[k] = 0.5f;
    /* without a cache context FirstBlockCache refuses, as diffusers */
    int32_t run = 0;
    int64_t hs[3] = {1, 4, 8};
    tensor_t th;
    da_block_io io;
    da_block_io_init(&io, sizeof io);
    io.hidden_states = tens(&th, h, 3, hs, NULL);
    EXPECT_ERR(da_model_module_begin(m, "transformer_blocks.0", &io, &run), DA_ERR_VALUE, "No cache context");

    EXPECT_ST(da_model_set_cache_context(m, "cond"), DA_OK);
    EXPECT_ST(da_model_begin_step(m, 999), DA_OK);
    run_step(m, step1, h, e, d);
    EXPECT_ST(da_model_end_step(m), DA_OK);
    CHECK(strcmp(d, "CCC") == 0, "step 1 decisions %s", d);
    CHECK(fabsf(h[0] - 6.0f) < 1e-5f, "step 1 output %g", h[0]);
    /* the first block's residual changes by 2% < 10%: the tail residual (2 + 3) is reused */
    EXPECT_ST(da_model_begin_step(m, 998), DA_OK);
    run_step(m, step2, h2, e2, d);
    EXPECT_ST(da_model_end_step(m), DA_OK);
    CHECK(strcmp(d, "CSS") == 0, "step 2 decisions %s", d);
    CHECK(fabsf(h2[0] - (1.02f + 5.0f)) < 1e-5f, "step 2 output %g", h2[0]);
    CHECK(fabsf(e2[0] - 3.5f) < 1e-5f, "step 2 encoder %g", e2[0]);
    EXPECT_ST(da_model_disable_cache(m), DA_OK);
    EXPECT_ST(da_model_enabled_cache(m, &kind), DA_OK);
    CHECK(kind == DA_CACHE_NONE, "kind after disable %d", kind);
    EXPECT_ST(da_model_disable_cache(m), DA_OK); /* nothing enabled: a no-op */
    da_model_destroy(m);
}

static void test_layer_skip_and_misuse(void) {
    da_model m = NULL;
    if (EXPECT_ST(da_model_create("FluxTransformer2DModel", FLUX, &m), DA_OK) == 0) return;
    da_layer_skip_config ls;
    EXPECT_ST(da_layer_skip_config_init(&ls, sizeof ls), DA_OK);
    int64_t idx[1] = {1}, hooked = 0;
    ls.indices = idx;
    ls.num_indices = 1;
    EXPECT_ST(da_model_apply_layer_skip(m, &ls, &hooked), DA_OK);
    CHECK(hooked == 3, "block + ff + ff_context hooked (%lld)", (long long)hooked);
    float h[32] = {0}, before = 0;
    h[0] = before = 7.0f;
    int64_t hs[3] = {1, 4, 8}, es[3] = {1, 2, 8};
    tensor_t th, te;
    da_block_io io;
    da_block_io_init(&io, sizeof io);
    io.hidden_states = tens(&th, h, 3, hs, NULL);
    int32_t run = -1;
    EXPECT_ST(da_model_module_begin(m, "transformer_blocks.1", &io, &run), DA_OK);
    CHECK(run == 0 && h[0] == before, "skipped block passes its input through (run %d)", run);
    EXPECT_ST(da_model_module_begin(m, "transformer_blocks.0", &io, &run), DA_OK);
    CHECK(run == 1, "other blocks run (%d)", run);

    /* misuse: every one a status, none a trap */
    EXPECT_ERR(da_model_module_begin(NULL, "transformer_blocks.0", &io, &run), DA_ERR_INVALID_HANDLE, "model");
    EXPECT_ST(da_model_module_begin(m, NULL, &io, &run), DA_ERR_INVALID_ARGUMENT);
    EXPECT_ST(da_model_module_begin(m, "transformer_blocks.0", NULL, &run), DA_ERR_INVALID_ARGUMENT);
    EXPECT_ST(da_model_module_begin(m, "transformer_blocks.0", &io, NULL), DA_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(da_model_module_begin(m, "no_such.block", &io, &run), DA_ERR_NOT_FOUND, "no_such");
    da_block_io bad = io;
    bad.struct_size = 3;
    EXPECT_ST(da_model_module_begin(m, "transformer_blocks.0", &bad, &run), DA_ERR_INVALID_ARGUMENT);
    bad = io;
    bad.hidden_states = NULL;
    EXPECT_ERR(da_model_module_begin(m, "transformer_blocks.0", &bad, &run), DA_ERR_INVALID_ARGUMENT, "hidden_states");
    bad = io;
    bad.encoder_hidden_states = tens(&te, NULL, 3, es, NULL);
    EXPECT_ST(da_model_module_begin(m, "transformer_blocks.0", &bad, &run), DA_ERR_INVALID_ARGUMENT);
    const char *path = NULL;
    EXPECT_ST(da_model_transformer_block_path(m, 99, &path), DA_ERR_INVALID_ARGUMENT);
    EXPECT_ST(da_model_transformer_block_path(m, -1, &path), DA_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(da_model_enable_cache(m, 42, &ls), DA_ERR_VALUE, "not supported");
    EXPECT_ST(da_model_enable_cache(m, DA_CACHE_TEA, NULL), DA_ERR_INVALID_ARGUMENT);

    da_mag_cache_config mag;
    EXPECT_ST(da_mag_cache_config_init(&mag, sizeof mag), DA_OK);
    EXPECT_ERR(da_model_apply_mag_cache(m, &mag, NULL), DA_ERR_VALUE, "mag_ratios");
    double ratios[2] = {1.0, 1.0};
    mag.mag_ratios = NULL;
    mag.num_mag_ratios = 2;
    EXPECT_ST(da_model_apply_mag_cache(m, &mag, NULL), DA_ERR_INVALID_ARGUMENT);
    mag.mag_ratios = ratios;
    mag.num_inference_steps = 0;
    EXPECT_ST(da_model_apply_mag_cache(m, &mag, NULL), DA_ERR_INVALID_ARGUMENT);
    double out[4];
    int64_t count = 0;
    EXPECT_ST(da_model_mag_cache_calibration(m, out, 4, &count), DA_ERR_STATE);

    da_teacache_config tea;
    EXPECT_ST(da_teacache_config_init(&tea, sizeof tea), DA_OK);
    tea.rel_l1_thresh = -1;
    EXPECT_ST(da_model_apply_teacache(m, &tea, NULL), DA_ERR_VALUE);

    da_taylorseer_cache_config ts;
    EXPECT_ST(da_taylorseer_cache_config_init(&ts, sizeof ts), DA_OK);
    ts.cache_interval = 0;
    EXPECT_ST(da_model_apply_taylorseer_cache(m, &ts, NULL), DA_ERR_INVALID_ARGUMENT);
    ts.cache_interval = 5;
    ts.disable_cache_before_step = INT64_MIN; /* |INT64_MIN| does not exist: a range check, not abs() */
    EXPECT_ERR(da_model_apply_taylorseer_cache(m, &ts, NULL), DA_ERR_INVALID_ARGUMENT, "disable_cache_before_step");
    ts.disable_cache_before_step = 3;
    ts.max_order = 17;
    EXPECT_ERR(da_model_apply_taylorseer_cache(m, &ts, NULL), DA_ERR_INVALID_ARGUMENT, "max_order");

    da_faster_cache_config fc;
    EXPECT_ST(da_faster_cache_config_init(&fc, sizeof fc), DA_OK);
    fc.tensor_format = "NCHW";
    EXPECT_ERR(da_model_apply_faster_cache(m, &fc, NULL), DA_ERR_VALUE, "tensor_format");
    int32_t skip = 1;
    EXPECT_ST(da_model_faster_cache_skips_unconditional(m, &skip), DA_OK);
    CHECK(skip == 0, "no FasterCache: never skip (%d)", skip);
    EXPECT_ERR(da_model_faster_cache_denoiser_output(m, io.hidden_states, io.hidden_states), DA_ERR_STATE, "FasterCache");

    ls.dropout = 2.0;
    EXPECT_ERR(da_model_apply_layer_skip(m, &ls, NULL), DA_ERR_VALUE, "dropout");
    ls.dropout = 1.0;
    ls.num_indices = 0;
    EXPECT_ERR(da_model_apply_layer_skip(m, &ls, NULL), DA_ERR_VALUE, "empty");
    ls.indices = NULL;
    ls.num_indices = 3;
    EXPECT_ST(da_model_apply_layer_skip(m, &ls, NULL), DA_ERR_INVALID_ARGUMENT);
    da_model_destroy(m);
}

void test_caches(void) {
    test_first_block_cache_protocol();
    test_layer_skip_and_misuse();
}
