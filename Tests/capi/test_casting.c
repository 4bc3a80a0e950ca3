/* Layerwise casting from C: the capability query, argument checks, and that a cast module still
 * runs (its outputs are checked against float32 in the Swift and Python tests). */
#include "capi_test.h"

void test_casting(void) {
    int32_t has = da_cpu_has_bf16_instructions();
    CHECK(has == 0 || has == 1, "da_cpu_has_bf16_instructions() = %d", has);

    da_attention_config c;
    da_attention_config_init(&c, sizeof c);
    c.query_dim = 32;
    da_attention a = make_attention(&c, 5);
    if (a == NULL) return;
    EXPECT_ERR(da_attention_enable_layerwise_casting(a, 7, NULL, 0), DA_ERR_INVALID_ARGUMENT, "storage_dtype");
    EXPECT_ERR(da_attention_enable_layerwise_casting(NULL, DA_STORAGE_BFLOAT16, NULL, 0), DA_ERR_INVALID_HANDLE, NULL);
    const char *bad[] = {"("};
    EXPECT_ERR(da_attention_enable_layerwise_casting(a, DA_STORAGE_BFLOAT16, bad, 1), DA_ERR_INVALID_ARGUMENT,
               "regular expression");
    const char *null_pattern[] = {NULL};
    EXPECT_ERR(da_attention_enable_layerwise_casting(a, DA_STORAGE_BFLOAT16, null_pattern, 1),
               DA_ERR_INVALID_ARGUMENT, NULL);
    EXPECT_ST(da_attention_enable_layerwise_casting(a, DA_STORAGE_BFLOAT16, NULL, 0), DA_OK);
    const char *skip[] = {"^to_q$"};
    EXPECT_ST(da_attention_enable_layerwise_casting(a, DA_STORAGE_FLOAT16, skip, 1), DA_OK);
    EXPECT_ST(da_attention_enable_layerwise_casting(a, DA_STORAGE_FLOAT32, NULL, 0), DA_OK);
    da_attention_destroy(a);
}
