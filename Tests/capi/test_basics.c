/* Versions, ABI, status and processor names, config defaults, create, get_config/get_info,
 * processors, weight listing and set/get_weight with strided tensors. */
#include "capi_test.h"

static void test_versions(void) {
    char expect[64];
    snprintf(expect, sizeof expect, "%d.%d.%d", DA_VERSION_MAJOR, DA_VERSION_MINOR, DA_VERSION_PATCH);
    CHECK(da_version() != NULL && strcmp(da_version(), expect) == 0, "da_version() = %s, header %s", da_version(), expect);
    CHECK(da_version_number() == DA_VERSION_NUMBER, "da_version_number() = %u", da_version_number());
    CHECK(da_abi_version() == DA_ABI_VERSION, "da_abi_version() = %u", da_abi_version());
    EXPECT_ST(da_check_abi(DA_ABI_VERSION), DA_OK);
    CHECK(da_last_error()[0] == '\0', "no message after a successful call, got \"%s\"", da_last_error());
    EXPECT_ERR(da_check_abi(DA_ABI_VERSION + 1), DA_ERR_UNSUPPORTED, "ABI");
    EXPECT_ST(da_check_abi(0xFFFFFFFFu), DA_ERR_UNSUPPORTED);
}

static void test_status_names(void) {
    static const struct { da_status s; const char *name; } names[] = {
        {DA_OK, "DA_OK"}, {DA_ERR_INVALID_ARGUMENT, "DA_ERR_INVALID_ARGUMENT"},
        {DA_ERR_INVALID_HANDLE, "DA_ERR_INVALID_HANDLE"}, {DA_ERR_SHAPE, "DA_ERR_SHAPE"},
        {DA_ERR_DTYPE, "DA_ERR_DTYPE"}, {DA_ERR_VALUE, "DA_ERR_VALUE"}, {DA_ERR_TYPE, "DA_ERR_TYPE"},
        {DA_ERR_UNSUPPORTED, "DA_ERR_UNSUPPORTED"}, {DA_ERR_NOT_FOUND, "DA_ERR_NOT_FOUND"},
        {DA_ERR_STATE, "DA_ERR_STATE"}, {DA_ERR_OUT_OF_MEMORY, "DA_ERR_OUT_OF_MEMORY"},
        {DA_ERR_IO, "DA_ERR_IO"}, {DA_ERR_INTERNAL, "DA_ERR_INTERNAL"},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const char *got = da_status_name(names[i].s);
        CHECK(got && strcmp(got, names[i].name) == 0, "da_status_name(%d) = %s, want %s", names[i].s, got ? got : "NULL", names[i].name);
    }
    CHECK(da_status_name(13) && strcmp(da_status_name(13), "DA_ERR_UNKNOWN") == 0, "status 13 -> %s", da_status_name(13));
    CHECK(da_status_name(-1) && strcmp(da_status_name(-1), "DA_ERR_UNKNOWN") == 0, "status -1 -> %s", da_status_name(-1));
    CHECK(da_status_name(INT32_MIN) && strcmp(da_status_name(INT32_MIN), "DA_ERR_UNKNOWN") == 0, "INT32_MIN");
}

static const struct { int32_t kind; const char *name; } processors[] = {
    {DA_PROCESSOR_ATTN_PROCESSOR, "AttnProcessor"},
    {DA_PROCESSOR_ATTN_PROCESSOR_2_0, "AttnProcessor2_0"},
    {DA_PROCESSOR_FUSED_ATTN_PROCESSOR_2_0, "FusedAttnProcessor2_0"},
    {DA_PROCESSOR_SLICED_ATTN_PROCESSOR, "SlicedAttnProcessor"},
    {DA_PROCESSOR_XFORMERS_ATTN_PROCESSOR, "XFormersAttnProcessor"},
    {DA_PROCESSOR_ATTN_PROCESSOR_NPU, "AttnProcessorNPU"},
    {DA_PROCESSOR_XLA_FLASH_ATTN_PROCESSOR_2_0, "XLAFlashAttnProcessor2_0"},
    {DA_PROCESSOR_ATTN_ADDED_KV_PROCESSOR, "AttnAddedKVProcessor"},
    {DA_PROCESSOR_ATTN_ADDED_KV_PROCESSOR_2_0, "AttnAddedKVProcessor2_0"},
    {DA_PROCESSOR_SLICED_ATTN_ADDED_KV_PROCESSOR, "SlicedAttnAddedKVProcessor"},
    {DA_PROCESSOR_XFORMERS_ATTN_ADDED_KV_PROCESSOR, "XFormersAttnAddedKVProcessor"},
    {DA_PROCESSOR_CUSTOM_DIFFUSION_ATTN_PROCESSOR, "CustomDiffusionAttnProcessor"},
    {DA_PROCESSOR_CUSTOM_DIFFUSION_ATTN_PROCESSOR_2_0, "CustomDiffusionAttnProcessor2_0"},
    {DA_PROCESSOR_CUSTOM_DIFFUSION_XFORMERS_ATTN_PROCESSOR, "CustomDiffusionXFormersAttnProcessor"},
    {DA_PROCESSOR_IP_ADAPTER_ATTN_PROCESSOR, "IPAdapterAttnProcessor"},
    {DA_PROCESSOR_IP_ADAPTER_ATTN_PROCESSOR_2_0, "IPAdapterAttnProcessor2_0"},
    {DA_PROCESSOR_IP_ADAPTER_XFORMERS_ATTN_PROCESSOR, "IPAdapterXFormersAttnProcessor"},
    {DA_PROCESSOR_LORA_ATTN_PROCESSOR, "LoRAAttnProcessor"},
    {DA_PROCESSOR_LORA_ATTN_PROCESSOR_2_0, "LoRAAttnProcessor2_0"},
    {DA_PROCESSOR_LORA_XFORMERS_ATTN_PROCESSOR, "LoRAXFormersAttnProcessor"},
    {DA_PROCESSOR_LORA_ATTN_ADDED_KV_PROCESSOR, "LoRAAttnAddedKVProcessor"},
    {DA_PROCESSOR_JOINT_ATTN_PROCESSOR_2_0, "JointAttnProcessor2_0"},
    {DA_PROCESSOR_FUSED_JOINT_ATTN_PROCESSOR_2_0, "FusedJointAttnProcessor2_0"},
    {DA_PROCESSOR_XFORMERS_JOINT_ATTN_PROCESSOR, "XFormersJointAttnProcessor"},
    {DA_PROCESSOR_PAG_JOINT_ATTN_PROCESSOR_2_0, "PAGJointAttnProcessor2_0"},
    {DA_PROCESSOR_PAG_CFG_JOINT_ATTN_PROCESSOR_2_0, "PAGCFGJointAttnProcessor2_0"},
    {DA_PROCESSOR_SD3_IP_ADAPTER_JOINT_ATTN_PROCESSOR_2_0, "SD3IPAdapterJointAttnProcessor2_0"},
    {DA_PROCESSOR_FLUX_ATTN_PROCESSOR_2_0, "FluxAttnProcessor2_0"},
    {DA_PROCESSOR_FUSED_FLUX_ATTN_PROCESSOR_2_0, "FusedFluxAttnProcessor2_0"},
    {DA_PROCESSOR_FLUX_ATTN_PROCESSOR_2_0_NPU, "FluxAttnProcessor2_0_NPU"},
    {DA_PROCESSOR_FUSED_FLUX_ATTN_PROCESSOR_2_0_NPU, "FusedFluxAttnProcessor2_0_NPU"},
    {DA_PROCESSOR_FLUX_SINGLE_ATTN_PROCESSOR_2_0, "FluxSingleAttnProcessor2_0"},
    {DA_PROCESSOR_XLA_FLUX_FLASH_ATTN_PROCESSOR_2_0, "XLAFluxFlashAttnProcessor2_0"},
    {DA_PROCESSOR_FLUX_IP_ADAPTER_JOINT_ATTN_PROCESSOR_2_0, "FluxIPAdapterJointAttnProcessor2_0"},
    {DA_PROCESSOR_FLUX_ATTN_PROCESSOR, "FluxAttnProcessor"},
    {DA_PROCESSOR_FLUX_IP_ADAPTER_ATTN_PROCESSOR, "FluxIPAdapterAttnProcessor"},
    {DA_PROCESSOR_AURA_FLOW_ATTN_PROCESSOR_2_0, "AuraFlowAttnProcessor2_0"},
    {DA_PROCESSOR_FUSED_AURA_FLOW_ATTN_PROCESSOR_2_0, "FusedAuraFlowAttnProcessor2_0"},
    {DA_PROCESSOR_COG_VIDEO_X_ATTN_PROCESSOR_2_0, "CogVideoXAttnProcessor2_0"},
    {DA_PROCESSOR_FUSED_COG_VIDEO_X_ATTN_PROCESSOR_2_0, "FusedCogVideoXAttnProcessor2_0"},
    {DA_PROCESSOR_HUNYUAN_ATTN_PROCESSOR_2_0, "HunyuanAttnProcessor2_0"},
    {DA_PROCESSOR_FUSED_HUNYUAN_ATTN_PROCESSOR_2_0, "FusedHunyuanAttnProcessor2_0"},
    {DA_PROCESSOR_PAG_HUNYUAN_ATTN_PROCESSOR_2_0, "PAGHunyuanAttnProcessor2_0"},
    {DA_PROCESSOR_PAG_CFG_HUNYUAN_ATTN_PROCESSOR_2_0, "PAGCFGHunyuanAttnProcessor2_0"},
    {DA_PROCESSOR_LUMINA_ATTN_PROCESSOR_2_0, "LuminaAttnProcessor2_0"},
    {DA_PROCESSOR_ALLEGRO_ATTN_PROCESSOR_2_0, "AllegroAttnProcessor2_0"},
    {DA_PROCESSOR_STABLE_AUDIO_ATTN_PROCESSOR_2_0, "StableAudioAttnProcessor2_0"},
    {DA_PROCESSOR_MOCHI_ATTN_PROCESSOR_2_0, "MochiAttnProcessor2_0"},
    {DA_PROCESSOR_MOCHI_VAE_ATTN_PROCESSOR_2_0, "MochiVaeAttnProcessor2_0"},
    {DA_PROCESSOR_SANA_LINEAR_ATTN_PROCESSOR_2_0, "SanaLinearAttnProcessor2_0"},
    {DA_PROCESSOR_PAG_CFG_SANA_LINEAR_ATTN_PROCESSOR_2_0, "PAGCFGSanaLinearAttnProcessor2_0"},
    {DA_PROCESSOR_PAG_IDENTITY_SANA_LINEAR_ATTN_PROCESSOR_2_0, "PAGIdentitySanaLinearAttnProcessor2_0"},
    {DA_PROCESSOR_SANA_MULTISCALE_ATTN_PROCESSOR_2_0, "SanaMultiscaleAttnProcessor2_0"},
    {DA_PROCESSOR_PAG_IDENTITY_SELF_ATTN_PROCESSOR_2_0, "PAGIdentitySelfAttnProcessor2_0"},
    {DA_PROCESSOR_PAG_CFG_IDENTITY_SELF_ATTN_PROCESSOR_2_0, "PAGCFGIdentitySelfAttnProcessor2_0"},
    {DA_PROCESSOR_ATTN_PROCESSOR_INT8, "AttnProcessorInt8"},
};

static void test_processor_names(void) {
    size_t n = sizeof processors / sizeof processors[0];
    for (size_t i = 0; i < n; i++) {
        const char *name = da_processor_name(processors[i].kind);
        CHECK(name != NULL && strcmp(name, processors[i].name) == 0, "da_processor_name(%d) = %s, want %s",
              processors[i].kind, name ? name : "NULL", processors[i].name);
        int32_t kind = -12345;
        EXPECT_ST(da_processor_kind_from_name(processors[i].name, &kind), DA_OK);
        CHECK(kind == processors[i].kind, "kind_from_name(%s) = %d, want %d", processors[i].name, kind, processors[i].kind);
        da_processor_config pc;
        EXPECT_ST(da_processor_config_init(&pc, sizeof pc, processors[i].kind), DA_OK);
        CHECK(pc.kind == processors[i].kind && pc.struct_size == sizeof pc, "processor_config_init(%d) kind %d size %u",
              processors[i].kind, pc.kind, pc.struct_size);
        int32_t impl = da_processor_is_implemented(processors[i].kind);
        CHECK(impl == 0 || impl == 1, "is_implemented(%d) = %d", processors[i].kind, impl);
    }
    CHECK(da_processor_is_implemented(DA_PROCESSOR_ATTN_PROCESSOR) == 1, "AttnProcessor implemented");
    CHECK(da_processor_is_implemented(DA_PROCESSOR_ATTN_PROCESSOR_2_0) == 1, "AttnProcessor2_0 implemented");
    CHECK(da_processor_is_implemented(9999) == 0, "9999 not implemented");
    CHECK(da_processor_is_implemented(-1) == 0, "-1 not implemented");
    CHECK(da_processor_name(9999) == NULL, "da_processor_name(9999) is NULL");
    CHECK(da_processor_name(-7) == NULL, "da_processor_name(-7) is NULL");
    CHECK(da_processor_name(8) == NULL, "da_processor_name(8) (a gap) is NULL");
    int32_t kind = 77;
    EXPECT_ERR(da_processor_kind_from_name("NoSuchProcessor", &kind), DA_ERR_NOT_FOUND, "NoSuchProcessor");
    EXPECT_ST(da_processor_kind_from_name("attnprocessor", &kind), DA_ERR_NOT_FOUND); /* exact spelling */
    EXPECT_ST(da_processor_kind_from_name("", &kind), DA_ERR_NOT_FOUND);
    da_processor_config pc;
    EXPECT_ST(da_processor_config_init(&pc, sizeof pc, 9999), DA_ERR_NOT_FOUND);
}

static void test_config_defaults(void) {
    da_attention_config c;
    memset(&c, 0xAB, sizeof c);
    EXPECT_ST(da_attention_config_init(&c, sizeof c), DA_OK);
    CHECK(c.struct_size == sizeof c, "struct_size %u", c.struct_size);
    CHECK(c.processor == DA_PROCESSOR_DEFAULT, "processor %d", c.processor);
    CHECK(c.query_dim == 0, "query_dim %lld", (long long)c.query_dim);
    CHECK(c.cross_attention_dim == DA_NONE && c.kv_heads == DA_NONE && c.added_kv_proj_dim == DA_NONE &&
              c.norm_num_groups == DA_NONE && c.spatial_norm_dim == DA_NONE && c.out_dim == DA_NONE &&
              c.out_context_dim == DA_NONE,
          "None size fields");
    CHECK(c.heads == 8 && c.dim_head == 64 && c.cross_attention_norm_num_groups == 32, "heads %lld dim_head %lld groups %lld",
          (long long)c.heads, (long long)c.dim_head, (long long)c.cross_attention_norm_num_groups);
    CHECK(c.dropout == 0.0 && c.eps == 1e-5 && c.rescale_output_factor == 1.0, "dropout %g eps %g rescale %g", c.dropout,
          c.eps, c.rescale_output_factor);
    CHECK(c.bias == 0 && c.upcast_attention == 0 && c.upcast_softmax == 0 && c.only_cross_attention == 0 &&
              c.residual_connection == 0 && c.from_deprecated_attn_block == 0 && c.pre_only == 0 && c.is_causal == 0,
          "false flags");
    CHECK(c.cross_attention_norm == DA_CROSS_ATTENTION_NORM_NONE && c.qk_norm == DA_QK_NORM_NONE, "norm kinds");
    CHECK(c.added_proj_bias == DA_TRISTATE_TRUE && c.context_pre_only == DA_TRISTATE_NONE, "tristates %d %d",
          c.added_proj_bias, c.context_pre_only);
    CHECK(c.out_bias == 1 && c.scale_qk == 1 && c.elementwise_affine == 1, "true flags");

    /* A larger struct (a caller compiled against a future header) is accepted. */
    unsigned char big[sizeof(da_attention_config) + 64];
    EXPECT_ST(da_attention_config_init((da_attention_config *)(void *)big, sizeof big), DA_OK);
    da_sdpa_options o;
    EXPECT_ST(da_sdpa_options_init(&o, sizeof o), DA_OK);
    CHECK(o.struct_size == sizeof o && o.is_causal == 0 && o.dropout_p == 0 && o.has_scale == 0 && o.enable_gqa == 0 &&
              o.algorithm == DA_SDPA_AUTO,
          "sdpa defaults");
    da_forward_args args;
    memset(&args, 0x5A, sizeof args);
    EXPECT_ST(da_forward_args_init(&args, sizeof args), DA_OK);
    CHECK(args.struct_size == sizeof args && args.hidden_states == NULL && args.encoder_hidden_states == NULL &&
              args.attention_mask == NULL && args.temb == NULL,
          "forward args zeroed");
}

static void test_create_info(void) {
    da_attention_config c;
    da_attention a = NULL;
    da_attention_info info;

    /* defaults with query_dim: heads 8, dim_head 64, AttnProcessor2_0 */
    da_attention_config_init(&c, sizeof c);
    c.query_dim = 40;
    EXPECT_ST(da_attention_create(&c, &a), DA_OK);
    CHECK(a != NULL, "handle");
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    EXPECT_ST(da_attention_get_info(a, &info), DA_OK);
    CHECK(info.heads == 8 && info.inner_dim == 512 && info.inner_kv_dim == 512 && info.sliceable_head_dim == 8,
          "heads %lld inner %lld inner_kv %lld sliceable %lld", (long long)info.heads, (long long)info.inner_dim,
          (long long)info.inner_kv_dim, (long long)info.sliceable_head_dim);
    CHECK(info.is_cross_attention == 0 && info.cross_attention_dim == 40 && info.out_dim == 40 && info.out_context_dim == 40,
          "cross %d cad %lld out %lld octx %lld", info.is_cross_attention, (long long)info.cross_attention_dim,
          (long long)info.out_dim, (long long)info.out_context_dim);
    CHECK(fabs(info.scale - 0.125) < 1e-12, "scale %g", info.scale);
    CHECK(info.processor == DA_PROCESSOR_ATTN_PROCESSOR_2_0, "default processor %d", info.processor);
    CHECK(info.fused_projections == 0, "fused %d", info.fused_projections);
    da_processor_config pc;
    pc.struct_size = sizeof pc;
    EXPECT_ST(da_attention_get_processor(a, &pc), DA_OK);
    CHECK(pc.kind == DA_PROCESSOR_ATTN_PROCESSOR_2_0, "get_processor kind %d", pc.kind);
    /* default weights: to_q/k/v without bias, to_out.0 with bias */
    static const char *names[] = {"to_q.weight", "to_k.weight", "to_v.weight", "to_out.0.weight", "to_out.0.bias"};
    static const int64_t shapes[][2] = {{512, 40}, {512, 40}, {512, 40}, {40, 512}, {40, 0}};
    int64_t count = -1;
    EXPECT_ST(da_attention_weight_count(a, &count), DA_OK);
    CHECK(count == 5, "weight count %lld", (long long)count);
    for (int64_t i = 0; i < count && i < 5; i++) {
        da_weight_info w;
        memset(&w, 0, sizeof w);
        w.struct_size = sizeof w;
        EXPECT_ST(da_attention_weight_info(a, i, &w), DA_OK);
        int nd = shapes[i][1] ? 2 : 1;
        CHECK(w.name && strcmp(w.name, names[i]) == 0 && w.ndim == nd && w.shape[0] == shapes[i][0] &&
                  (nd == 1 || w.shape[1] == shapes[i][1]),
              "weight %lld: %s ndim %d (%lld, %lld), want %s", (long long)i, w.name ? w.name : "NULL", w.ndim,
              (long long)w.shape[0], (long long)w.shape[1], names[i]);
    }
    /* torch-like initialisation: Linear weights pseudo-random (not all zero), finite */
    float *wq = alloc_floats(512 * 40);
    tensor_t t;
    int64_t sq[2] = {512, 40};
    EXPECT_ST(da_attention_get_weight(a, "to_q.weight", tens(&t, wq, 2, sq, NULL)), DA_OK);
    int nonzero = 0, finite = 1;
    for (int i = 0; i < 512 * 40; i++) {
        nonzero |= wq[i] != 0.0f;
        finite &= isfinite(wq[i]) && fabsf(wq[i]) <= 1.0f / sqrtf(40.0f) + 1e-6f;
    }
    CHECK(nonzero && finite, "initial to_q.weight pseudo-random within torch's U(-1/sqrt(fan_in), 1/sqrt(fan_in))");
    free(wq);
    da_weight_info w;
    w.struct_size = sizeof w;
    EXPECT_ERR(da_attention_weight_info(a, 5, &w), DA_ERR_INVALID_ARGUMENT, "index");
    EXPECT_ST(da_attention_weight_info(a, -1, &w), DA_ERR_INVALID_ARGUMENT);
    da_attention_destroy(a);

    /* dim_head 16, out_dim 40 → heads 40 // 16 = 2 */
    da_attention_config_init(&c, sizeof c);
    c.query_dim = 40;
    c.dim_head = 16;
    c.out_dim = 40;
    EXPECT_ST(da_attention_create(&c, &a), DA_OK);
    info.struct_size = sizeof info;
    EXPECT_ST(da_attention_get_info(a, &info), DA_OK);
    CHECK(info.heads == 2 && info.inner_dim == 40 && info.inner_kv_dim == 40 && info.sliceable_head_dim == 8 &&
              info.out_dim == 40 && fabs(info.scale - 0.25) < 1e-12,
          "out_dim: heads %lld inner %lld inner_kv %lld sliceable %lld out %lld scale %g", (long long)info.heads,
          (long long)info.inner_dim, (long long)info.inner_kv_dim, (long long)info.sliceable_head_dim,
          (long long)info.out_dim, info.scale);
    da_attention_destroy(a);

    /* attention_processor.py:Attention.__init__: heads=4, dim_head=8, out_dim=48 → heads 6, sliceable 4 */
    da_attention_config_init(&c, sizeof c);
    c.query_dim = 48;
    c.heads = 4;
    c.dim_head = 8;
    c.out_dim = 48;
    EXPECT_ST(da_attention_create(&c, &a), DA_OK);
    EXPECT_ST(da_attention_get_info(a, &info), DA_OK);
    CHECK(info.heads == 6 && info.sliceable_head_dim == 4, "heads %lld sliceable %lld", (long long)info.heads,
          (long long)info.sliceable_head_dim);
    da_attention_destroy(a);

    /* scale_qk = 0 → scale 1 and AttnProcessor */
    da_attention_config_init(&c, sizeof c);
    c.query_dim = 32;
    c.scale_qk = 0;
    EXPECT_ST(da_attention_create(&c, &a), DA_OK);
    EXPECT_ST(da_attention_get_info(a, &info), DA_OK);
    CHECK(info.scale == 1.0 && info.processor == DA_PROCESSOR_ATTN_PROCESSOR, "scale_qk=0: scale %g processor %d",
          info.scale, info.processor);
    da_attention_destroy(a);

    /* cross-attention, bias, group norm: names and shapes in diffusers' order */
    da_attention_config_init(&c, sizeof c);
    c.query_dim = 24;
    c.cross_attention_dim = 20;
    c.heads = 2;
    c.dim_head = 8;
    c.bias = 1;
    c.norm_num_groups = 4;
    EXPECT_ST(da_attention_create(&c, &a), DA_OK);
    EXPECT_ST(da_attention_get_info(a, &info), DA_OK);
    CHECK(info.is_cross_attention == 1 && info.cross_attention_dim == 20 && info.inner_dim == 16, "cross info");
    {
        static const char *n2[] = {"group_norm.weight", "group_norm.bias", "to_q.weight", "to_q.bias", "to_k.weight",
                                   "to_k.bias", "to_v.weight", "to_v.bias", "to_out.0.weight", "to_out.0.bias"};
        static const int64_t s2[][2] = {{24, 0}, {24, 0}, {16, 24}, {16, 0}, {16, 20},
                                        {16, 0}, {16, 20}, {16, 0}, {24, 16}, {24, 0}};
        EXPECT_ST(da_attention_weight_count(a, &count), DA_OK);
        CHECK(count == 10, "count %lld", (long long)count);
        for (int64_t i = 0; i < count && i < 10; i++) {
            memset(&w, 0, sizeof w);
            w.struct_size = sizeof w;
            EXPECT_ST(da_attention_weight_info(a, i, &w), DA_OK);
            int nd = s2[i][1] ? 2 : 1;
            CHECK(w.name && strcmp(w.name, n2[i]) == 0 && w.ndim == nd && w.shape[0] == s2[i][0] &&
                      (nd == 1 || w.shape[1] == s2[i][1]),
                  "weight %lld: %s ndim %d (%lld, %lld), want %s", (long long)i, w.name ? w.name : "NULL", w.ndim,
                  (long long)w.shape[0], (long long)w.shape[1], n2[i]);
        }
        float gw[24];
        EXPECT_ST(da_attention_get_weight(a, "group_norm.weight", tens(&t, gw, 1, (int64_t[]){24}, NULL)), DA_OK);
        float gb[24];
        EXPECT_ST(da_attention_get_weight(a, "group_norm.bias", tens(&t, gb, 1, (int64_t[]){24}, NULL)), DA_OK);
        int ones = 1;
        for (int i = 0; i < 24; i++) ones &= gw[i] == 1.0f && gb[i] == 0.0f;
        CHECK(ones, "initial group_norm weight 1, bias 0");
    }

    /* get_config round trip */
    da_attention_config back;
    da_attention_config_init(&back, sizeof back);
    EXPECT_ST(da_attention_get_config(a, &back), DA_OK);
    CHECK(back.query_dim == 24 && back.cross_attention_dim == 20 && back.heads == 2 && back.dim_head == 8 &&
              back.bias == 1 && back.norm_num_groups == 4 && back.out_dim == DA_NONE && back.kv_heads == DA_NONE &&
              back.eps == 1e-5 && back.out_bias == 1 && back.scale_qk == 1 && back.processor == DA_PROCESSOR_DEFAULT,
          "get_config round trip");
    da_attention_destroy(a);

    /* round trip of every field with non-default values (that still construct) */
    da_attention_config_init(&c, sizeof c);
    c.processor = DA_PROCESSOR_ATTN_PROCESSOR;
    c.query_dim = 64;
    c.cross_attention_dim = 48;
    c.heads = 4;
    c.dim_head = 16;
    c.cross_attention_norm = DA_CROSS_ATTENTION_NORM_GROUP_NORM;
    c.cross_attention_norm_num_groups = 8;
    c.norm_num_groups = 16;
    c.out_dim = 64;
    c.out_context_dim = 32;
    c.dropout = 0.25;
    c.eps = 1e-6;
    c.rescale_output_factor = 2.0;
    c.bias = 1;
    c.upcast_attention = 1;
    c.upcast_softmax = 1;
    c.qk_norm = DA_QK_NORM_RMS_NORM;
    c.added_proj_bias = DA_TRISTATE_FALSE;
    c.out_bias = 0;
    c.residual_connection = 1;
    c.from_deprecated_attn_block = 1;
    c.context_pre_only = DA_TRISTATE_FALSE;
    c.elementwise_affine = 0;
    c.is_causal = 1;
    EXPECT_ST(da_attention_create(&c, &a), DA_OK);
    da_attention_config_init(&back, sizeof back);
    EXPECT_ST(da_attention_get_config(a, &back), DA_OK);
    CHECK(memcmp(&back, &c, sizeof c) == 0 || (back.processor == c.processor && back.query_dim == c.query_dim &&
                                               back.cross_attention_dim == c.cross_attention_dim &&
                                               back.heads == c.heads && back.dim_head == c.dim_head &&
                                               back.cross_attention_norm == c.cross_attention_norm &&
                                               back.cross_attention_norm_num_groups == c.cross_attention_norm_num_groups &&
                                               back.norm_num_groups == c.norm_num_groups && back.out_dim == c.out_dim &&
                                               back.out_context_dim == c.out_context_dim && back.dropout == c.dropout &&
                                               back.eps == c.eps && back.rescale_output_factor == c.rescale_output_factor &&
                                               back.bias == c.bias && back.upcast_attention == c.upcast_attention &&
                                               back.upcast_softmax == c.upcast_softmax && back.qk_norm == c.qk_norm &&
                                               back.added_proj_bias == c.added_proj_bias && back.out_bias == c.out_bias &&
                                               back.residual_connection == c.residual_connection &&
                                               back.from_deprecated_attn_block == c.from_deprecated_attn_block &&
                                               back.context_pre_only == c.context_pre_only &&
                                               back.elementwise_affine == c.elementwise_affine &&
                                               back.is_causal == c.is_causal),
          "every field round-trips through get_config");
    EXPECT_ST(da_attention_get_info(a, &info), DA_OK);
    CHECK(info.processor == DA_PROCESSOR_ATTN_PROCESSOR && info.out_context_dim == 32, "processor %d octx %lld",
          info.processor, (long long)info.out_context_dim);
    /* context_pre_only=False creates to_add_out even without added_kv_proj_dim (attention_processor.py:Attention.__init__) */
    int has_add_out = 0, has_norm_cross = 0;
    EXPECT_ST(da_attention_weight_count(a, &count), DA_OK);
    for (int64_t i = 0; i < count; i++) {
        w.struct_size = sizeof w;
        if (da_attention_weight_info(a, i, &w) != DA_OK) break;
        if (strcmp(w.name, "to_add_out.weight") == 0) has_add_out = 1;
        if (strcmp(w.name, "norm_cross.weight") == 0 && w.shape[0] == 48) has_norm_cross = 1;
    }
    CHECK(has_add_out && has_norm_cross, "to_add_out %d norm_cross(48) %d", has_add_out, has_norm_cross);
    da_attention_destroy(a);
}

static void test_processors(void) {
    da_attention_config c;
    da_attention a = NULL;
    da_attention_config_init(&c, sizeof c);
    c.query_dim = 16;
    c.heads = 2;
    c.dim_head = 8;
    EXPECT_ST(da_attention_create(&c, &a), DA_OK);
    da_processor_config pc;
    EXPECT_ST(da_processor_config_init(&pc, sizeof pc, DA_PROCESSOR_ATTN_PROCESSOR), DA_OK);
    EXPECT_ST(da_attention_set_processor(a, &pc), DA_OK);
    da_attention_info info;
    info.struct_size = sizeof info;
    EXPECT_ST(da_attention_get_info(a, &info), DA_OK);
    CHECK(info.processor == DA_PROCESSOR_ATTN_PROCESSOR, "processor after set %d", info.processor);
    pc.kind = 9999;
    EXPECT_ERR(da_attention_set_processor(a, &pc), DA_ERR_NOT_FOUND, "9999");
    EXPECT_ST(da_attention_get_info(a, &info), DA_OK);
    CHECK(info.processor == DA_PROCESSOR_ATTN_PROCESSOR, "failed set_processor leaves the processor: %d", info.processor);
    pc.kind = DA_PROCESSOR_ATTN_PROCESSOR_2_0;
    EXPECT_ST(da_attention_set_processor(a, &pc), DA_OK);
    da_processor_config got;
    got.struct_size = sizeof got;
    EXPECT_ST(da_attention_get_processor(a, &got), DA_OK);
    CHECK(got.kind == DA_PROCESSOR_ATTN_PROCESSOR_2_0, "get_processor %d", got.kind);
    /* SlicedAttnProcessor: a negative slice_size is refused; 0 installs (as in diffusers) and
       the forward then fails with a message instead of diffusers' ZeroDivisionError. */
    if (da_processor_is_implemented(DA_PROCESSOR_SLICED_ATTN_PROCESSOR)) {
        EXPECT_ST(da_processor_config_init(&pc, sizeof pc, DA_PROCESSOR_SLICED_ATTN_PROCESSOR), DA_OK);
        pc.slice_size = -1;
        da_status st = da_attention_set_processor(a, &pc);
        CHECK(st != DA_OK && msg_nonempty(), "sliced with slice_size -1: %s", da_status_name(st));
        pc.slice_size = 0;
        EXPECT_ST(da_attention_set_processor(a, &pc), DA_OK);
        float x[1 * 3 * 16];
        for (int i = 0; i < 48; i++) x[i] = (float)i / 48.0f;
        int64_t xs[3] = {1, 3, 16};
        DLTensor xt = {x, {kDLCPU, 0}, 3, {kDLFloat, 32, 1}, xs, NULL, 0};
        float o[48];
        DLTensor ot = {o, {kDLCPU, 0}, 3, {kDLFloat, 32, 1}, xs, NULL, 0};
        da_forward_args args;
        da_forward_args_init(&args, sizeof args);
        args.hidden_states = &xt;
        st = da_attention_forward(a, &args, &ot, 1);
        CHECK(st == DA_ERR_VALUE && msg_nonempty(), "sliced forward with slice_size 0: %s", da_status_name(st));
    }
    da_attention_destroy(a);
}

static void test_weights(void) {
    da_attention_config c;
    da_attention a = NULL;
    da_attention_config_init(&c, sizeof c);
    c.query_dim = 12;
    c.heads = 2;
    c.dim_head = 5; /* inner 10 */
    c.bias = 1;
    EXPECT_ST(da_attention_create(&c, &a), DA_OK);
    tensor_t t, u;
    /* to_q.weight is (10, 12). Source: the transpose of a (12, 10) compact buffer. */
    enum { R = 10, C = 12 };
    float src[C * R], dense[R * C], padded[R * (C + 3)];
    for (int i = 0; i < R; i++)
        for (int j = 0; j < C; j++) src[j * R + i] = (float)(i * 100 + j);
    int64_t shape[2] = {R, C}, tstrides[2] = {1, R};
    EXPECT_ST(da_attention_set_weight(a, "to_q.weight", tens(&t, src, 2, shape, tstrides)), DA_OK);
    EXPECT_ST(da_attention_get_weight(a, "to_q.weight", tens(&u, dense, 2, shape, NULL)), DA_OK);
    int ok = 1;
    for (int i = 0; i < R; i++)
        for (int j = 0; j < C; j++) ok &= dense[i * C + j] == (float)(i * 100 + j);
    CHECK(ok, "strided set_weight then compact get_weight");
    /* get into a padded (row stride C+3) buffer: the padding must stay untouched */
    for (int i = 0; i < R * (C + 3); i++) padded[i] = -7.0f;
    int64_t pstrides[2] = {C + 3, 1};
    EXPECT_ST(da_attention_get_weight(a, "to_q.weight", tens(&u, padded, 2, shape, pstrides)), DA_OK);
    ok = 1;
    for (int i = 0; i < R; i++)
        for (int j = 0; j < C + 3; j++) ok &= padded[i * (C + 3) + j] == (j < C ? (float)(i * 100 + j) : -7.0f);
    CHECK(ok, "get_weight into a padded strided tensor, padding untouched");
    /* strides given explicitly equal to compact; and byte_offset honoured */
    float big[1 + R * C];
    big[0] = 1234.0f;
    tens(&u, big, 2, shape, NULL);
    u.t.byte_offset = sizeof(float);
    EXPECT_ST(da_attention_get_weight(a, "to_q.weight", &u.t), DA_OK);
    CHECK(big[0] == 1234.0f && big[1] == 0.0f && big[1 + C] == 100.0f, "byte_offset honoured: %g %g %g", big[0], big[1],
          big[1 + C]);
    /* a broadcast (stride 0) source */
    float one = 0.5f;
    int64_t bshape[1] = {10}, bstr[1] = {0};
    EXPECT_ST(da_attention_set_weight(a, "to_q.bias", tens(&t, &one, 1, bshape, bstr)), DA_OK);
    float qb[10];
    EXPECT_ST(da_attention_get_weight(a, "to_q.bias", tens(&u, qb, 1, bshape, NULL)), DA_OK);
    ok = 1;
    for (int i = 0; i < 10; i++) ok &= qb[i] == 0.5f;
    CHECK(ok, "stride-0 source broadcast into to_q.bias");
    /* negative strides: honoured or rejected with a message (never garbage) */
    float rev[12], outb[12];
    for (int i = 0; i < 12; i++) rev[i] = (float)i;
    int64_t s12[1] = {12}, neg[1] = {-1};
    da_status st = da_attention_set_weight(a, "to_out.0.bias", tens(&t, rev + 11, 1, s12, neg));
    if (st == DA_OK) {
        EXPECT_ST(da_attention_get_weight(a, "to_out.0.bias", tens(&u, outb, 1, s12, NULL)), DA_OK);
        ok = 1;
        for (int i = 0; i < 12; i++) ok &= outb[i] == (float)(11 - i);
        CHECK(ok, "negative stride honoured");
    } else {
        CHECK(st == DA_ERR_SHAPE && msg_nonempty(), "negative stride rejected with %s: %s", da_status_name(st), da_last_error());
    }
    /* unknown name: NOT_FOUND, message lists the expected names */
    EXPECT_ERR(da_attention_set_weight(a, "to_x.weight", tens(&t, src, 2, shape, NULL)), DA_ERR_NOT_FOUND, "to_x.weight");
    CHECK(msg_contains("to_q.weight") && msg_contains("to_k.bias") && msg_contains("to_out.0.bias"),
          "message lists expected names: %s", da_last_error());
    EXPECT_ERR(da_attention_get_weight(a, "group_norm.weight", tens(&u, dense, 2, shape, NULL)), DA_ERR_NOT_FOUND,
               "to_out.0.weight");
    EXPECT_ST(da_attention_get_weight(a, "", tens(&u, dense, 2, shape, NULL)), DA_ERR_NOT_FOUND);
    /* wrong shape */
    int64_t wrong[2] = {C, R};
    EXPECT_ERR(da_attention_set_weight(a, "to_q.weight", tens(&t, src, 2, wrong, NULL)), DA_ERR_SHAPE, "to_q.weight");
    int64_t flat[1] = {R * C};
    EXPECT_ST(da_attention_set_weight(a, "to_q.weight", tens(&t, src, 1, flat, NULL)), DA_ERR_SHAPE);
    EXPECT_ST(da_attention_get_weight(a, "to_q.weight", tens(&u, dense, 2, wrong, NULL)), DA_ERR_SHAPE);
    /* wrong dtype: float64 and a boolean */
    double d[R * C];
    tens(&t, d, 2, shape, NULL);
    t.t.dtype.bits = 64;
    EXPECT_ST(da_attention_set_weight(a, "to_q.weight", &t.t), DA_ERR_DTYPE);
    EXPECT_ST(da_attention_get_weight(a, "to_q.weight", &t.t), DA_ERR_DTYPE);
    uint8_t bb[R * C];
    EXPECT_ST(da_attention_set_weight(a, "to_q.weight", tens_bool(&t, bb, 2, shape, NULL, kDLUInt)), DA_ERR_DTYPE);
    /* failed set_weight changed nothing */
    EXPECT_ST(da_attention_get_weight(a, "to_q.weight", tens(&u, dense, 2, shape, NULL)), DA_OK);
    CHECK(dense[C + 1] == 101.0f, "weight unchanged by failed calls: %g", dense[C + 1]);
    da_attention_destroy(a);
}

void test_basics(void) {
    test_versions();
    test_status_names();
    test_processor_names();
    test_config_defaults();
    test_create_info();
    test_processors();
    test_weights();
}
