/* Enumerating processor kinds and their families (da_processor_kind_count / _kind_at / _family),
 * and the library's sizes of the header's structs (da_struct_size). */
#include "capi_test.h"

static void test_enumeration(void) {
    int64_t n = da_processor_kind_count();
    CHECK(n == 56, "da_processor_kind_count() = %lld, want the header's 56 DA_PROCESSOR_* kinds (55 of diffusers + AttnProcessorInt8)", (long long)n);
    int32_t previous = 0;
    for (int64_t i = 0; i < n; i++) {
        int32_t kind = -1;
        EXPECT_ST(da_processor_kind_at(i, &kind), DA_OK);
        CHECK(kind > previous, "kind_at(%lld) = %d follows %d in header order", (long long)i, kind, previous);
        CHECK(da_processor_name(kind) != NULL, "kind_at(%lld) = %d has a name", (long long)i, kind);
        int32_t family = -1;
        EXPECT_ST(da_processor_family(kind, &family), DA_OK);
        previous = kind;
    }
    int32_t kind = 0;
    EXPECT_ERR(da_processor_kind_at(-1, &kind), DA_ERR_INVALID_ARGUMENT, "index");
    EXPECT_ERR(da_processor_kind_at(n, &kind), DA_ERR_INVALID_ARGUMENT, "index");
    EXPECT_ERR(da_processor_kind_at(0, NULL), DA_ERR_INVALID_ARGUMENT, "kind");
}

static void test_families(void) {
    static const struct { int32_t kind, family; } cases[] = {
        {DA_PROCESSOR_ATTN_PROCESSOR_2_0, DA_PROCESSOR_FAMILY_STANDARD},
        {DA_PROCESSOR_SLICED_ATTN_PROCESSOR, DA_PROCESSOR_FAMILY_STANDARD},
        {DA_PROCESSOR_ATTN_PROCESSOR_INT8, DA_PROCESSOR_FAMILY_STANDARD},
        {DA_PROCESSOR_ATTN_ADDED_KV_PROCESSOR, DA_PROCESSOR_FAMILY_ADDED_KV},
        {DA_PROCESSOR_CUSTOM_DIFFUSION_XFORMERS_ATTN_PROCESSOR, DA_PROCESSOR_FAMILY_CUSTOM_DIFFUSION},
        {DA_PROCESSOR_IP_ADAPTER_ATTN_PROCESSOR_2_0, DA_PROCESSOR_FAMILY_IP_ADAPTER},
        {DA_PROCESSOR_LORA_ATTN_ADDED_KV_PROCESSOR, DA_PROCESSOR_FAMILY_DEPRECATED_LORA},
        {DA_PROCESSOR_JOINT_ATTN_PROCESSOR_2_0, DA_PROCESSOR_FAMILY_DIT},
        {DA_PROCESSOR_SANA_MULTISCALE_ATTN_PROCESSOR_2_0, DA_PROCESSOR_FAMILY_DIT},
        {DA_PROCESSOR_SD3_IP_ADAPTER_JOINT_ATTN_PROCESSOR_2_0, DA_PROCESSOR_FAMILY_DIT_SD3_IP_ADAPTER},
        {DA_PROCESSOR_FLUX_IP_ADAPTER_ATTN_PROCESSOR, DA_PROCESSOR_FAMILY_DIT_FLUX_IP_ADAPTER},
        {DA_PROCESSOR_FLUX_IP_ADAPTER_JOINT_ATTN_PROCESSOR_2_0, DA_PROCESSOR_FAMILY_DIT_FLUX_IP_ADAPTER},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int32_t family = -1;
        EXPECT_ST(da_processor_family(cases[i].kind, &family), DA_OK);
        CHECK(family == cases[i].family, "family(%d) = %d, want %d", cases[i].kind, family, cases[i].family);
    }
    int32_t family = 0;
    EXPECT_ERR(da_processor_family(DA_PROCESSOR_DEFAULT, &family), DA_ERR_NOT_FOUND, "kind");
    EXPECT_ERR(da_processor_family(9999, &family), DA_ERR_NOT_FOUND, "kind");
    EXPECT_ERR(da_processor_family(DA_PROCESSOR_ATTN_PROCESSOR, NULL), DA_ERR_INVALID_ARGUMENT, "family");
}

static void test_struct_sizes(void) {
#define SIZE_OF(T) {#T, sizeof(T)}
    static const struct { const char *name; size_t size; } sizes[] = {
        SIZE_OF(DLDevice), SIZE_OF(DLDataType), SIZE_OF(DLTensor), SIZE_OF(DLManagedTensor),
        SIZE_OF(da_processor_config), SIZE_OF(da_attention_config), SIZE_OF(da_attention_info),
        SIZE_OF(da_weight_info), SIZE_OF(da_forward_args), SIZE_OF(da_dit_args), SIZE_OF(da_output_shapes),
        SIZE_OF(da_spatial_norm_weights), SIZE_OF(da_sdpa_options), SIZE_OF(da_load_report),
        SIZE_OF(da_hook_callbacks), SIZE_OF(da_group_offload_config), SIZE_OF(da_group_offload_stats),
        SIZE_OF(da_pab_config), SIZE_OF(da_block_io), SIZE_OF(da_first_block_cache_config),
        SIZE_OF(da_faster_cache_config), SIZE_OF(da_taylorseer_cache_config), SIZE_OF(da_mag_cache_config),
        SIZE_OF(da_teacache_config), SIZE_OF(da_layer_skip_config),
    };
#undef SIZE_OF
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t got = da_struct_size(sizes[i].name);
        CHECK(got == sizes[i].size, "da_struct_size(%s) = %zu, sizeof = %zu", sizes[i].name, got, sizes[i].size);
    }
    CHECK(da_struct_size("da_no_such_struct") == 0, "unknown name -> 0");
    CHECK(da_struct_size(NULL) == 0, "NULL -> 0");
}

void test_processor_query(void) {
    test_enumeration();
    test_families();
    test_struct_sizes();
}
