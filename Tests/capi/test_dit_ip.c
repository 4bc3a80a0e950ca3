/* The DiT IP-Adapter processors from C: their constructor fields (appended to da_processor_config),
 * their processor.* weights, ip_hidden_states / temb through da_forward_args, and their refusals. */
#include "capi_test.h"

static da_attention sd3_module(void) {
    da_attention_config cfg;
    da_attention_config_init(&cfg, sizeof cfg);
    cfg.query_dim = 32; cfg.heads = 2; cfg.dim_head = 16; cfg.added_kv_proj_dim = 24; cfg.out_dim = 32;
    cfg.context_pre_only = DA_TRISTATE_FALSE; cfg.bias = 1;
    return make_attention(&cfg, 11);
}

static void sd3_ip(void) {
    da_attention a = sd3_module();
    if (!a) return;
    da_processor_config p;
    EXPECT_ST(da_processor_config_init(&p, sizeof p, DA_PROCESSOR_SD3_IP_ADAPTER_JOINT_ATTN_PROCESSOR_2_0), DA_OK);
    CHECK(p.timesteps_emb_dim == 1280 && p.head_dim == 0 && p.ip_hidden_states_dim == 0, "SD3 IP defaults");
    EXPECT_ERR(da_attention_set_processor(a, &p), DA_ERR_TYPE, "hidden_size");
    p.hidden_size = 32; p.ip_hidden_states_dim = 20;
    EXPECT_ERR(da_attention_set_processor(a, &p), DA_ERR_TYPE, "head_dim");
    p.head_dim = 16; p.hidden_size = 1 << 24; p.ip_hidden_states_dim = 1 << 24;
    EXPECT_ERR(da_attention_set_processor(a, &p), DA_ERR_OUT_OF_MEMORY, "2^30");
    p.hidden_size = 32; p.ip_hidden_states_dim = 20;
    da_processor_config classic;
    da_processor_config_init(&classic, sizeof classic, DA_PROCESSOR_IP_ADAPTER_ATTN_PROCESSOR_2_0);
    classic.hidden_size = 1 << 24; classic.cross_attention_dim = 1 << 24;
    EXPECT_ERR(da_attention_set_processor(a, &classic), DA_ERR_OUT_OF_MEMORY, "2^30");
    p.timesteps_emb_dim = -3;
    EXPECT_ST(da_attention_set_processor(a, &p), DA_ERR_INVALID_ARGUMENT);
    p.timesteps_emb_dim = 12;
    EXPECT_ST(da_attention_set_processor(a, &p), DA_OK);
    double scale = 0;
    int64_t nvalues = 0;
    EXPECT_ST(da_attention_get_ip_adapter_scale(a, &scale, 1, NULL, 0, &nvalues), DA_OK);
    CHECK(nvalues == 1 && scale == 0.5, "SD3 IP default scale 0.5, got %g", scale);
    da_weight_info w;
    w.struct_size = sizeof w;
    int64_t count = 0;
    EXPECT_ST(da_attention_weight_count(a, &count), DA_OK);
    int found = 0;
    for (int64_t i = 0; i < count; i++) {
        if (da_attention_weight_info(a, i, &w) == DA_OK && strcmp(w.name, "processor.norm_ip.linear.weight") == 0)
            found = w.shape[0] == 40 && w.shape[1] == 12;
    }
    CHECK(found, "processor.norm_ip.linear.weight is (2·ip_hidden_states_dim, timesteps_emb_dim)");

    float *x = alloc_floats(2 * 7 * 32), *e = alloc_floats(2 * 5 * 24), *ip = alloc_floats(2 * 3 * 20), *t = alloc_floats(2 * 13);  /* also the (2, 13) temb */
    fill_det(x, 2 * 7 * 32, 1, 1.0f);
    fill_det(e, 2 * 5 * 24, 2, 1.0f);
    fill_det(ip, 2 * 3 * 20, 3, 1.0f);
    fill_det(t, 2 * 12, 4, 1.0f);
    tensor_t tx, te, tip, tt;
    int64_t xs[3] = {2, 7, 32}, es[3] = {2, 5, 24}, ips[3] = {2, 3, 20}, ts[2] = {2, 12}, bad[2] = {2, 13};
    da_forward_args args;
    da_forward_args_init(&args, sizeof args);
    args.hidden_states = tens(&tx, x, 3, xs, NULL);
    args.encoder_hidden_states = tens(&te, e, 3, es, NULL);
    args.ip_hidden_states_given = 1;
    args.num_ip_hidden_states = 1;
    args.ip_hidden_states = tens(&tip, ip, 3, ips, NULL);
    da_output_shapes shapes;
    shapes.struct_size = sizeof shapes;
    EXPECT_ERR(da_attention_output_shapes(a, &args, &shapes), DA_ERR_TYPE, "temb");
    args.temb = tens(&tt, t, 2, bad, NULL);
    EXPECT_ERR(da_attention_output_shapes(a, &args, &shapes), DA_ERR_SHAPE, "timesteps_emb_dim");
    args.temb = tens(&tt, t, 2, ts, NULL);
    EXPECT_ST(da_attention_output_shapes(a, &args, &shapes), DA_OK);
    CHECK(shapes.count == 2 && shapes.shape[0][2] == 32, "SD3 IP returns (image, text)");
    DLManagedTensor *outs[DA_MAX_OUTPUTS];
    int32_t n = 0;
    EXPECT_ST(da_attention_forward_alloc(a, &args, outs, DA_MAX_OUTPUTS, &n), DA_OK);
    for (int i = 0; i < n; i++) da_tensor_free(outs[i]);
    args.num_ip_hidden_states = 2;
    tensor_t two[2];
    tens(&two[0], ip, 3, ips, NULL);
    tens(&two[1], ip, 3, ips, NULL);
    DLTensor pair[2] = {two[0].t, two[1].t};
    args.ip_hidden_states = pair;
    EXPECT_ERR(da_attention_output_shapes(a, &args, &shapes), DA_ERR_INVALID_ARGUMENT, "one");
    da_attention_destroy(a);
    free(x); free(e); free(ip); free(t);
}

static void flux_ip(void) {
    da_attention a = flux_module(32, 12);
    if (!a) return;
    da_processor_config p;
    EXPECT_ST(da_processor_config_init(&p, sizeof p, DA_PROCESSOR_FLUX_IP_ADAPTER_ATTN_PROCESSOR), DA_OK);
    p.hidden_size = 32;
    EXPECT_ERR(da_attention_set_processor(a, &p), DA_ERR_TYPE, "cross_attention_dim");
    p.cross_attention_dim = 24;
    EXPECT_ST(da_attention_set_processor(a, &p), DA_OK);
    float *x = alloc_floats(2 * 7 * 32), *e = alloc_floats(2 * 5 * 32), *ip = alloc_floats(2 * 4 * 24);
    fill_det(x, 2 * 7 * 32, 5, 1.0f);
    fill_det(e, 2 * 5 * 32, 6, 1.0f);
    fill_det(ip, 2 * 4 * 24, 7, 1.0f);
    tensor_t tx, te, tip;
    int64_t xs[3] = {2, 7, 32}, es[3] = {2, 5, 32}, ips[3] = {2, 4, 24}, wrong[3] = {2, 4, 23};
    da_forward_args args;
    da_forward_args_init(&args, sizeof args);
    args.hidden_states = tens(&tx, x, 3, xs, NULL);
    args.encoder_hidden_states = tens(&te, e, 3, es, NULL);
    da_output_shapes shapes;
    shapes.struct_size = sizeof shapes;
    EXPECT_ERR(da_attention_output_shapes(a, &args, &shapes), DA_ERR_TYPE, "not iterable");
    args.ip_hidden_states_given = 1;
    args.num_ip_hidden_states = 1;
    args.ip_hidden_states = tens(&tip, ip, 3, wrong, NULL);
    EXPECT_ERR(da_attention_output_shapes(a, &args, &shapes), DA_ERR_SHAPE, "ip_hidden_states[0]");
    args.ip_hidden_states = tens(&tip, ip, 3, ips, NULL);
    EXPECT_ST(da_attention_output_shapes(a, &args, &shapes), DA_OK);
    CHECK(shapes.count == 3 && shapes.shape[2][1] == 7 && shapes.shape[2][2] == 32, "Flux IP returns (image, text, ip_out)");
    DLManagedTensor *outs[DA_MAX_OUTPUTS];
    int32_t n = 0;
    EXPECT_ST(da_attention_forward_alloc(a, &args, outs, 2, &n), DA_ERR_INVALID_ARGUMENT);
    EXPECT_ST(da_attention_forward_alloc(a, &args, outs, DA_MAX_OUTPUTS, &n), DA_OK);
    CHECK(n == 3, "three outputs, got %d", n);
    for (int i = 0; i < n; i++) da_tensor_free(outs[i]);
    da_attention_destroy(a);
    free(x); free(e); free(ip);
}

void test_dit_ip(void) {
    sd3_ip();
    flux_ip();
}
