/* da_model_load_pretrained (issue 18, item 3) on the folders Tests/Fixtures/gen_pretrained.py saved with
 * diffusers: a sharded float32 Flux and a bf16 UNet load completely; the class is checked against
 * config.json's _class_name (also by da_model_create); misuse fails with a status. Parity of the
 * loaded modules and the missing-shard / missing-weight cases: Tests/python/test_pretrained.py. */
#include "capi_test.h"

#ifndef DIFFATTN_FIXTURES
#define DIFFATTN_FIXTURES "Tests/Fixtures"
#endif
#define PRETRAINED DIFFATTN_FIXTURES "/pretrained/"

static void test_sharded_folder(void) {
    da_model m = NULL;
    da_load_report r;
    memset(&r, 0, sizeof r);
    r.struct_size = sizeof r;
    if (EXPECT_ST(da_model_load_pretrained(PRETRAINED "flux_sharded", NULL, DA_LOAD_STRICT, &m, &r), DA_OK) == 0) return;
    CHECK(r.attention_loaded > 0 && r.attention_missing == 0 && r.unexpected == 0,
          "sharded Flux: %lld attention weights loaded over all shards, none missing or unexpected", (long long)r.attention_loaded);
    int64_t n = -1;
    for (int32_t which = DA_KEYS_MISSING; which <= DA_KEYS_UNLOADED; which++) {
        EXPECT_ST(da_model_load_key_count(m, which, &n), DA_OK);
        CHECK(n == 0, "key list %d empty (%lld)", which, (long long)n);
    }
    const char *name = NULL;
    EXPECT_ERR(da_model_load_key(m, DA_KEYS_MISSING, 0, &name), DA_ERR_INVALID_ARGUMENT, "index");
    EXPECT_ERR(da_model_load_key_count(m, 7, &n), DA_ERR_INVALID_ARGUMENT, "which");
    const char *cls = NULL;
    EXPECT_ST(da_model_class_name(m, &cls), DA_OK);
    CHECK(cls && strcmp(cls, "FluxTransformer2DModel") == 0, "class from config.json: %s", cls ? cls : "(null)");
    da_model_destroy(m);

    m = NULL;
    EXPECT_ST(da_model_load_pretrained(PRETRAINED "unet_bf16", "UNet2DConditionModel", 0, &m, NULL), DA_OK);
    da_model_destroy(m);
}

static void test_misuse_pretrained(void) {
    da_model m = (da_model)1;
    EXPECT_ERR(da_model_load_pretrained(PRETRAINED "flux_sharded", "UNet2DConditionModel", 0, &m, NULL), DA_ERR_VALUE, "_class_name");
    CHECK(m == NULL, "*out NULL on failure");
    EXPECT_ERR(da_model_load_pretrained(PRETRAINED "no_such_folder", NULL, 0, &m, NULL), DA_ERR_IO, "config.json");
    EXPECT_ERR(da_model_load_pretrained(PRETRAINED "flux_sharded", NULL, 64, &m, NULL), DA_ERR_INVALID_ARGUMENT, "flags");
    EXPECT_ERR(da_model_load_pretrained(NULL, NULL, 0, &m, NULL), DA_ERR_INVALID_ARGUMENT, "directory");
    EXPECT_ERR(da_model_load_pretrained(PRETRAINED "flux_sharded", NULL, 0, NULL, NULL), DA_ERR_INVALID_ARGUMENT, "out");
    EXPECT_ERR(da_model_load_pretrained(PRETRAINED "flux_sharded", "NoSuchModel", 0, &m, NULL), DA_ERR_NOT_FOUND, "NoSuchModel");
    /* da_model_create checks _class_name too: a UNet config passed as Flux */
    EXPECT_ERR(da_model_create("FluxTransformer2DModel", "{\"_class_name\": \"UNet2DConditionModel\"}", &m), DA_ERR_VALUE,
               "UNet2DConditionModel");
    EXPECT_ERR(da_model_create("FluxTransformer2DModel", "{\"_class_name\": 3}", &m), DA_ERR_TYPE, "_class_name");
}

void test_pretrained(void) {
    test_sharded_folder();
    test_misuse_pretrained();
}
