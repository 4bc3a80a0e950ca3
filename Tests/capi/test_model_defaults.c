/* DA_PROCESSOR_DEFAULT as a processor argument (the default of each module's class), attn_processors
 * keys accepted as module paths, and group offloading's files removed when offloading ends. */
#include <dirent.h>
#include <stdlib.h>
#include <unistd.h>

#include "capi_test.h"

static const char *FLUX = "{\"attention_head_dim\": 8, \"axes_dims_rope\": [2, 2, 4], \"in_channels\": 4, "
                          "\"joint_attention_dim\": 4, \"num_attention_heads\": 1, \"num_layers\": 2, "
                          "\"num_single_layers\": 1, \"patch_size\": 1, \"pooled_projection_dim\": 4}";

static void test_default_processor_argument(void) {
    da_processor_config def, classic;
    EXPECT_ST(da_processor_config_init(&def, sizeof def, DA_PROCESSOR_DEFAULT), DA_OK);
    CHECK(def.kind == DA_PROCESSOR_DEFAULT, "kind %d", def.kind);
    EXPECT_ST(da_processor_config_init(&classic, sizeof classic, DA_PROCESSOR_ATTN_PROCESSOR), DA_OK);

    /* a standalone Attention without scale_qk: AttnProcessor (diffusers' rule) */
    da_attention_config cfg;
    da_attention_config_init(&cfg, sizeof cfg);
    cfg.query_dim = 16;
    cfg.scale_qk = 0;
    da_attention a = NULL;
    if (EXPECT_ST(da_attention_create(&cfg, &a), DA_OK) == 0) return;
    da_processor_config got;
    got.struct_size = sizeof got;
    EXPECT_ST(da_attention_set_processor(a, &def), DA_OK);
    EXPECT_ST(da_attention_get_processor(a, &got), DA_OK);
    CHECK(got.kind == DA_PROCESSOR_ATTN_PROCESSOR, "default without scale_qk: %d", got.kind);
    da_attention_destroy(a);

    /* a Flux model: every module back to its class default, model-wide and by name */
    da_model m = NULL;
    if (EXPECT_ST(da_model_create("FluxTransformer2DModel", FLUX, &m), DA_OK) == 0) return;
    int64_t n = 0;
    da_model_attn_processor_count(m, &n);
    EXPECT_ST(da_model_set_attn_processor(m, &classic), DA_OK);
    EXPECT_ST(da_model_set_attn_processor(m, &def), DA_OK);
    int ok = 1;
    for (int64_t i = 0; i < n; i++) {
        const char *key = NULL;
        da_model_attn_processor_name(m, i, &key);
        da_model_attn_processor_get(m, key, &got);
        ok = ok && got.kind == DA_PROCESSOR_FLUX_ATTN_PROCESSOR;
    }
    CHECK(ok && n > 0, "set_attn_processor(DEFAULT) gives FluxAttnProcessor on all %lld modules", (long long)n);
    const char *names[8];
    da_processor_config values[8];
    for (int64_t i = 0; i < n && i < 8; i++) {
        da_model_attn_processor_name(m, i, &names[i]);
        values[i] = i == 0 ? def : classic;
    }
    EXPECT_ST(da_model_set_attn_processors(m, names, values, n), DA_OK);
    da_model_attn_processor_get(m, names[0], &got);
    CHECK(got.kind == DA_PROCESSOR_FLUX_ATTN_PROCESSOR, "by name, DEFAULT entry: %d", got.kind);
    da_model_attn_processor_get(m, names[1], &got);
    CHECK(got.kind == DA_PROCESSOR_ATTN_PROCESSOR, "by name, other entry: %d", got.kind);
    const char *first = names[0];
    names[0] = "no.such.attn.processor"; /* diffusers' KeyError names the module left without a processor */
    EXPECT_ERR(da_model_set_attn_processors(m, names, values, n), DA_ERR_NOT_FOUND, first);
    da_model_destroy(m);
}

static void test_attn_processor_keys_as_paths(void) {
    da_model m = NULL;
    if (EXPECT_ST(da_model_create("FluxTransformer2DModel", FLUX, &m), DA_OK) == 0) return;
    int64_t n = 0;
    da_model_attn_processor_count(m, &n);
    int ok = n > 0;
    for (int64_t i = 0; i < n; i++) {
        const char *key = NULL;
        da_attention by_key = NULL, by_path = NULL;
        da_model_attn_processor_name(m, i, &key);
        char path[256];
        snprintf(path, sizeof path, "%s", key);
        char *suffix = strstr(path, ".processor");
        if (suffix) *suffix = '\0';
        ok = ok && da_model_get_attention(m, key, &by_key) == DA_OK && da_model_get_attention(m, path, &by_path) == DA_OK
             && by_key == by_path && by_key != NULL;
    }
    CHECK(ok, "every attn_processors key, with and without .processor, names its module (%lld)", (long long)n);
    da_attention a = NULL;
    EXPECT_ERR(da_model_get_attention(m, "transformer_blocks.0.processor", &a), DA_ERR_NOT_FOUND, "transformer_blocks.0");
    da_model_destroy(m);
}

static int count_files(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

static void test_offload_files_removed(void) {
    char dir[] = "/tmp/diffattn-offload.XXXXXX";
    if (!mkdtemp(dir)) { CHECK(0, "mkdtemp"); return; }
    da_model m = NULL;
    if (EXPECT_ST(da_model_create("FluxTransformer2DModel", FLUX, &m), DA_OK) == 0) return;
    da_group_offload_config oc;
    da_group_offload_config_init(&oc, sizeof oc);
    oc.num_blocks_per_group = 1;
    oc.offload_to_disk_path = dir;
    EXPECT_ST(da_model_enable_group_offload(m, NULL, &oc), DA_OK);
    int written = count_files(dir);
    CHECK(written > 0, "offload files written: %d", written);
    EXPECT_ST(da_model_disable_group_offload(m), DA_OK);
    CHECK(count_files(dir) == 0, "files left after disable: %d", count_files(dir));
    EXPECT_ST(da_model_enable_group_offload(m, NULL, &oc), DA_OK);
    CHECK(count_files(dir) == written, "files written again: %d", count_files(dir));
    da_model_destroy(m);
    CHECK(count_files(dir) == 0, "files left after destroy: %d", count_files(dir));
    CHECK(rmdir(dir) == 0, "the directory stays and is empty");
}

/* torch.nn.GroupNorm refuses widths its groups do not divide; diffusers' constructors then fail. */
static void test_group_norm_groups_checked(void) {
    const char *unet = "{\"block_out_channels\": [32, 64], \"norm_num_groups\": 7, \"cross_attention_dim\": 32, "
                       "\"attention_head_dim\": 8, \"layers_per_block\": 1, "
                       "\"down_block_types\": [\"CrossAttnDownBlock2D\", \"DownBlock2D\"], "
                       "\"up_block_types\": [\"UpBlock2D\", \"CrossAttnUpBlock2D\"]}";
    da_model m = NULL;
    EXPECT_ERR(da_model_create("UNet2DConditionModel", unet, &m), DA_ERR_VALUE,
               "num_channels (32) must be divisible by num_groups (7)");
    CHECK(m == NULL, "no model on failure");
    EXPECT_ERR(da_model_create("AutoencoderKL", "{\"block_out_channels\": [32], \"norm_num_groups\": 7}", &m),
               DA_ERR_VALUE, "num_channels (32) must be divisible by num_groups (7)");
    const char *ok = "{\"block_out_channels\": [32, 64], \"norm_num_groups\": 8, \"cross_attention_dim\": 32, "
                     "\"attention_head_dim\": 8, \"layers_per_block\": 1, "
                     "\"down_block_types\": [\"CrossAttnDownBlock2D\", \"DownBlock2D\"], "
                     "\"up_block_types\": [\"UpBlock2D\", \"CrossAttnUpBlock2D\"]}";
    EXPECT_ST(da_model_create("UNet2DConditionModel", ok, &m), DA_OK);
    da_model_destroy(m);
}

void test_model_defaults(void) {
    test_group_norm_groups_checked();
    test_default_processor_argument();
    test_attn_processor_keys_as_paths();
    test_offload_files_removed();
}
