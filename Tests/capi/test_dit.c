/* The DiT additions from C: module classes, da_dit_args (rotary tables), da_rotary_tables, joint
 * outputs, and the errors every new entry point reports before any arithmetic. */
#include "capi_test.h"

/* A double-stream FluxAttention (query_dim 32, 2 heads of 16) with text width `added`. */
da_attention flux_module(int64_t added, uint32_t seed) {
    da_attention_config cfg;
    da_attention_config_init(&cfg, sizeof cfg);
    cfg.module_class = DA_MODULE_CLASS_FLUX_ATTENTION;
    cfg.query_dim = 32; cfg.heads = 2; cfg.dim_head = 16; cfg.added_kv_proj_dim = added;
    cfg.out_dim = 32; cfg.context_pre_only = DA_TRISTATE_FALSE; cfg.bias = 1;
    return make_attention(&cfg, seed);
}

void test_dit(void) {
    /* rotary tables: Flux-style three axes */
    double positions[12 * 3];
    for (int i = 0; i < 36; i++) positions[i] = (double)(i % 5);
    int64_t axes[3] = {4, 6, 6};
    DLManagedTensor *cos = NULL, *sin = NULL;
    EXPECT_ST(da_rotary_tables(positions, 12, 3, axes, 10000.0, 1.0, 1.0, DA_ROTARY_REPEAT_INTERLEAVED, 1, &cos, &sin), DA_OK);
    CHECK(cos && cos->dl_tensor.ndim == 2 && cos->dl_tensor.shape[0] == 12 && cos->dl_tensor.shape[1] == 16,
          "cos table shape");
    int64_t odd[1] = {5};
    DLManagedTensor *c2 = NULL, *s2 = NULL;
    EXPECT_ERR(da_rotary_tables(positions, 12, 1, odd, 10000.0, 1.0, 1.0, DA_ROTARY_REPEAT_INTERLEAVED, 0, &c2, &s2),
               DA_ERR_INVALID_ARGUMENT, "even");
    EXPECT_ST(da_rotary_tables(NULL, 12, 1, axes, 10000.0, 1.0, 1.0, 0, 0, &c2, &s2), DA_ERR_INVALID_ARGUMENT);
    EXPECT_ST(da_rotary_tables(positions, 12, 1, axes, 10000.0, 1.0, 1.0, 9, 0, &c2, &s2), DA_ERR_INVALID_ARGUMENT);

    da_attention a = flux_module(24, 7);
    if (!a) return;
    float *x = alloc_floats(2 * 8 * 32) /* also holds the (1, 32, 3, 5) Sana input below */, *e = alloc_floats(2 * 5 * 24);
    fill_det(x, 2 * 7 * 32, 1, 1.0f);
    fill_det(e, 2 * 5 * 24, 2, 1.0f);
    tensor_t tx, te;
    int64_t xs[3] = {2, 7, 32}, es[3] = {2, 5, 24};
    da_forward_args args;
    da_forward_args_init(&args, sizeof args);
    args.hidden_states = tens(&tx, x, 3, xs, NULL);
    args.encoder_hidden_states = tens(&te, e, 3, es, NULL);
    da_dit_args dit;
    EXPECT_ST(da_dit_args_init(&dit, sizeof dit - 1), DA_ERR_INVALID_ARGUMENT);
    EXPECT_ST(da_dit_args_init(&dit, sizeof dit), DA_OK);
    dit.rotary_cos = &cos->dl_tensor;
    dit.rotary_sin = &sin->dl_tensor;
    args.dit = &dit;
    da_output_shapes shapes;
    shapes.struct_size = sizeof shapes;
    EXPECT_ST(da_attention_output_shapes(a, &args, &shapes), DA_OK);
    CHECK(shapes.count == 2 && shapes.shape[0][1] == 7 && shapes.shape[1][1] == 5, "Flux returns (image, text)");
    DLManagedTensor *outs[DA_MAX_OUTPUTS];
    int32_t n = 0;
    EXPECT_ST(da_attention_forward_alloc(a, &args, outs, DA_MAX_OUTPUTS, &n), DA_OK);
    CHECK(n == 2, "two outputs, got %d", n);
    for (int i = 0; i < n; i++) {
        const float *p = outs[i]->dl_tensor.data;
        int finite = 1;
        for (int64_t j = 0; j < numel(3, outs[i]->dl_tensor.shape); j++) finite &= isfinite(p[j]) != 0;
        CHECK(finite, "output %d finite", i);
        da_tensor_free(outs[i]);
    }
    /* wrong table rows: the joint sequence has 12 tokens */
    tensor_t tc, ts;
    int64_t bad[2] = {7, 16};
    dit.rotary_cos = tens(&tc, cos->dl_tensor.data, 2, bad, NULL);
    dit.rotary_sin = tens(&ts, sin->dl_tensor.data, 2, bad, NULL);
    EXPECT_ERR(da_attention_output_shapes(a, &args, &shapes), DA_ERR_SHAPE, "image_rotary_emb");
    dit.rotary_sin = NULL;
    EXPECT_ST(da_attention_output_shapes(a, &args, &shapes), DA_ERR_INVALID_ARGUMENT);
    dit.struct_size = 4;
    EXPECT_ST(da_attention_output_shapes(a, &args, &shapes), DA_ERR_INVALID_ARGUMENT);
    /* the fused NPU Flux processor always raises */
    da_processor_config p;
    da_processor_config_init(&p, sizeof p, DA_PROCESSOR_FUSED_FLUX_ATTN_PROCESSOR_2_0_NPU);
    EXPECT_ST(da_attention_set_processor(a, &p), DA_OK);
    args.dit = NULL;
    EXPECT_ERR(da_attention_output_shapes(a, &args, &shapes), DA_ERR_VALUE, "_fused_npu");
    da_attention_destroy(a);

    /* Sana multiscale: heads derived from mult, output (B, C_out, H, W) */
    da_attention_config cfg;
    da_attention_config_init(&cfg, sizeof cfg);
    cfg.module_class = DA_MODULE_CLASS_SANA_MULTISCALE_LINEAR_ATTENTION;
    cfg.query_dim = 32; cfg.heads = DA_NONE; cfg.dim_head = 8; cfg.out_channels = 32; cfg.eps = 1e-15;
    cfg.num_kernel_sizes = 2; cfg.kernel_sizes[0] = 3; cfg.kernel_sizes[1] = 5;
    da_attention s = make_attention(&cfg, 3);
    if (s) {
        da_attention_info info;
        info.struct_size = sizeof info;
        da_attention_get_info(s, &info);
        CHECK(info.heads == 4 && info.processor == DA_PROCESSOR_SANA_MULTISCALE_ATTN_PROCESSOR_2_0, "Sana heads %lld",
              (long long)info.heads);
        tensor_t ti;
        int64_t is[4] = {1, 32, 3, 5};
        da_forward_args_init(&args, sizeof args);
        args.hidden_states = tens(&ti, x, 4, is, NULL);
        EXPECT_ST(da_attention_output_shapes(s, &args, &shapes), DA_OK);
        CHECK(shapes.count == 1 && shapes.shape[0][1] == 32 && shapes.shape[0][3] == 5, "Sana output shape");
        da_attention_destroy(s);
    }
    cfg.num_kernel_sizes = 17;
    da_attention bad_module = NULL;
    EXPECT_ST(da_attention_create(&cfg, &bad_module), DA_ERR_INVALID_ARGUMENT);
    cfg.num_kernel_sizes = 1;
    cfg.module_class = 99;
    EXPECT_ST(da_attention_create(&cfg, &bad_module), DA_ERR_INVALID_ARGUMENT);
    da_tensor_free(cos);
    da_tensor_free(sin);
    free(x);
    free(e);
}
