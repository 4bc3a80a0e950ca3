/* Misuse from C: NULL everywhere, bad/destroyed/made-up handles, struct sizes, absurd configs
 * and tensor geometries, wrong num_outputs, wrong output shapes, unknown enum values, thread
 * counts. None of it may crash; each gets a status and a message. */
#include "capi_test.h"

static da_attention small_module(void) {
    da_attention_config c;
    da_attention_config_init(&c, sizeof c);
    c.query_dim = 16;
    c.heads = 2;
    c.dim_head = 8;
    return make_attention(&c, 3);
}

static void test_nulls(void) {
    da_attention a = small_module();
    if (!a) return;
    da_attention_config cfg;
    da_attention_config_init(&cfg, sizeof cfg);
    cfg.query_dim = 16;
    da_attention_info info;
    info.struct_size = sizeof info;
    da_processor_config pc;
    da_processor_config_init(&pc, sizeof pc, DA_PROCESSOR_ATTN_PROCESSOR);
    da_weight_info wi;
    wi.struct_size = sizeof wi;
    int64_t count;
    int32_t kind, n;
    float x[2 * 3 * 16], w[16 * 16];
    fill_det(x, 96, 1, 1);
    tensor_t tx, to, tw;
    int64_t xs[3] = {2, 3, 16}, ws[2] = {16, 16};
    da_forward_args args;
    da_forward_args_init(&args, sizeof args);
    args.hidden_states = tens(&tx, x, 3, xs, NULL);
    da_output_shapes os;
    os.struct_size = sizeof os;
    DLManagedTensor *m = NULL, *outs[DA_MAX_OUTPUTS];
    float o[96];

    /* library-wide calls */
    EXPECT_ERR(da_processor_kind_from_name(NULL, &kind), DA_ERR_INVALID_ARGUMENT, "NULL");
    EXPECT_ST(da_processor_kind_from_name("AttnProcessor", NULL), DA_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(da_processor_config_init(NULL, sizeof pc, 1), DA_ERR_INVALID_ARGUMENT, "config");
    EXPECT_ERR(da_attention_config_init(NULL, sizeof cfg), DA_ERR_INVALID_ARGUMENT, "config");
    EXPECT_ERR(da_forward_args_init(NULL, sizeof args), DA_ERR_INVALID_ARGUMENT, "args");
    EXPECT_ERR(da_sdpa_options_init(NULL, sizeof(da_sdpa_options)), DA_ERR_INVALID_ARGUMENT, "options");
    da_tensor_free(NULL);
    da_attention_destroy(NULL);
    CHECK(da_last_error() != NULL, "da_last_error never NULL");

    /* create */
    EXPECT_ERR(da_attention_create(NULL, &a), DA_ERR_INVALID_ARGUMENT, "config");
    /* (the failing create above must not have clobbered our handle? it sets *out = NULL by contract) */
    CHECK(a == NULL, "create sets *out = NULL on failure");
    a = small_module();
    if (!a) return;
    EXPECT_ERR(da_attention_create(&cfg, NULL), DA_ERR_INVALID_ARGUMENT, "out");

    /* every handle call with a NULL handle → INVALID_HANDLE */
    EXPECT_ST(da_attention_get_config(NULL, &cfg), DA_ERR_INVALID_HANDLE);
    EXPECT_ST(da_attention_get_info(NULL, &info), DA_ERR_INVALID_HANDLE);
    EXPECT_ST(da_attention_set_processor(NULL, &pc), DA_ERR_INVALID_HANDLE);
    EXPECT_ST(da_attention_get_processor(NULL, &pc), DA_ERR_INVALID_HANDLE);
    EXPECT_ST(da_attention_weight_count(NULL, &count), DA_ERR_INVALID_HANDLE);
    EXPECT_ST(da_attention_weight_info(NULL, 0, &wi), DA_ERR_INVALID_HANDLE);
    EXPECT_ST(da_attention_set_weight(NULL, "to_q.weight", tens(&tw, w, 2, ws, NULL)), DA_ERR_INVALID_HANDLE);
    EXPECT_ST(da_attention_get_weight(NULL, "to_q.weight", tens(&tw, w, 2, ws, NULL)), DA_ERR_INVALID_HANDLE);
    EXPECT_ST(da_attention_output_shapes(NULL, &args, &os), DA_ERR_INVALID_HANDLE);
    EXPECT_ST(da_attention_forward(NULL, &args, tens(&to, o, 3, xs, NULL), 1), DA_ERR_INVALID_HANDLE);
    EXPECT_ST(da_attention_forward_alloc(NULL, &args, outs, DA_MAX_OUTPUTS, &n), DA_ERR_INVALID_HANDLE);
    EXPECT_ST(da_attention_prepare_attention_mask(NULL, tens(&tx, x, 2, (int64_t[]){2, 3}, NULL), 3, 2, 3, &m),
              DA_ERR_INVALID_HANDLE);
    EXPECT_ST(da_attention_head_to_batch_dim(NULL, tens(&tx, x, 3, xs, NULL), 3, &m), DA_ERR_INVALID_HANDLE);
    EXPECT_ST(da_attention_batch_to_head_dim(NULL, tens(&tx, x, 3, xs, NULL), &m), DA_ERR_INVALID_HANDLE);
    EXPECT_ST(da_attention_get_attention_scores(NULL, tens(&tx, x, 3, xs, NULL), tens(&to, x, 3, xs, NULL), NULL, &m),
              DA_ERR_INVALID_HANDLE);
    EXPECT_ST(da_attention_norm_encoder_hidden_states(NULL, tens(&tx, x, 3, xs, NULL), &m), DA_ERR_INVALID_HANDLE);

    /* live handle, NULL pointer arguments → INVALID_ARGUMENT naming the argument */
    args.hidden_states = tens(&tx, x, 3, xs, NULL);
    EXPECT_ERR(da_attention_get_config(a, NULL), DA_ERR_INVALID_ARGUMENT, "config");
    EXPECT_ERR(da_attention_get_info(a, NULL), DA_ERR_INVALID_ARGUMENT, "info");
    EXPECT_ERR(da_attention_set_processor(a, NULL), DA_ERR_INVALID_ARGUMENT, "processor");
    EXPECT_ERR(da_attention_get_processor(a, NULL), DA_ERR_INVALID_ARGUMENT, "processor");
    EXPECT_ERR(da_attention_weight_count(a, NULL), DA_ERR_INVALID_ARGUMENT, "count");
    EXPECT_ERR(da_attention_weight_info(a, 0, NULL), DA_ERR_INVALID_ARGUMENT, "info");
    EXPECT_ERR(da_attention_set_weight(a, NULL, tens(&tw, w, 2, ws, NULL)), DA_ERR_INVALID_ARGUMENT, "name");
    EXPECT_ERR(da_attention_set_weight(a, "to_q.weight", NULL), DA_ERR_INVALID_ARGUMENT, "value");
    EXPECT_ERR(da_attention_get_weight(a, NULL, tens(&tw, w, 2, ws, NULL)), DA_ERR_INVALID_ARGUMENT, "name");
    EXPECT_ERR(da_attention_get_weight(a, "to_q.weight", NULL), DA_ERR_INVALID_ARGUMENT, "out");
    EXPECT_ERR(da_attention_output_shapes(a, NULL, &os), DA_ERR_INVALID_ARGUMENT, "args");
    EXPECT_ERR(da_attention_output_shapes(a, &args, NULL), DA_ERR_INVALID_ARGUMENT, "shapes");
    EXPECT_ERR(da_attention_forward(a, NULL, tens(&to, o, 3, xs, NULL), 1), DA_ERR_INVALID_ARGUMENT, "args");
    EXPECT_ERR(da_attention_forward(a, &args, NULL, 1), DA_ERR_INVALID_ARGUMENT, "outputs");
    EXPECT_ERR(da_attention_forward_alloc(a, NULL, outs, DA_MAX_OUTPUTS, &n), DA_ERR_INVALID_ARGUMENT, "args");
    EXPECT_ERR(da_attention_forward_alloc(a, &args, NULL, DA_MAX_OUTPUTS, &n), DA_ERR_INVALID_ARGUMENT, "outputs");
    EXPECT_ERR(da_attention_forward_alloc(a, &args, outs, DA_MAX_OUTPUTS, NULL), DA_ERR_INVALID_ARGUMENT, "num_outputs");
    args.hidden_states = NULL;
    EXPECT_ERR(da_attention_forward(a, &args, tens(&to, o, 3, xs, NULL), 1), DA_ERR_INVALID_ARGUMENT, "hidden_states");
    EXPECT_ERR(da_attention_output_shapes(a, &args, &os), DA_ERR_INVALID_ARGUMENT, "hidden_states");
    args.hidden_states = tens(&tx, x, 3, xs, NULL);
    EXPECT_ERR(da_attention_prepare_attention_mask(a, NULL, 3, 2, 3, &m), DA_ERR_INVALID_ARGUMENT, "mask");
    EXPECT_ERR(da_attention_prepare_attention_mask(a, tens(&tx, x, 2, (int64_t[]){2, 3}, NULL), 3, 2, 3, NULL),
               DA_ERR_INVALID_ARGUMENT, "out");
    EXPECT_ERR(da_attention_head_to_batch_dim(a, NULL, 3, &m), DA_ERR_INVALID_ARGUMENT, "tensor");
    EXPECT_ERR(da_attention_head_to_batch_dim(a, tens(&tx, x, 3, xs, NULL), 3, NULL), DA_ERR_INVALID_ARGUMENT, "out");
    EXPECT_ERR(da_attention_batch_to_head_dim(a, NULL, &m), DA_ERR_INVALID_ARGUMENT, "tensor");
    EXPECT_ERR(da_attention_batch_to_head_dim(a, tens(&tx, x, 3, xs, NULL), NULL), DA_ERR_INVALID_ARGUMENT, "out");
    EXPECT_ERR(da_attention_get_attention_scores(a, NULL, tens(&to, x, 3, xs, NULL), NULL, &m), DA_ERR_INVALID_ARGUMENT,
               "query");
    EXPECT_ERR(da_attention_get_attention_scores(a, tens(&tx, x, 3, xs, NULL), NULL, NULL, &m), DA_ERR_INVALID_ARGUMENT,
               "key");
    EXPECT_ERR(da_attention_get_attention_scores(a, tens(&tx, x, 3, xs, NULL), tens(&to, x, 3, xs, NULL), NULL, NULL),
               DA_ERR_INVALID_ARGUMENT, "out");
    EXPECT_ERR(da_attention_norm_encoder_hidden_states(a, NULL, &m), DA_ERR_INVALID_ARGUMENT, "encoder_hidden_states");
    EXPECT_ERR(da_attention_norm_encoder_hidden_states(a, tens(&tx, x, 3, xs, NULL), NULL), DA_ERR_INVALID_ARGUMENT,
               "out");

    /* sdpa with NULL tensors */
    float q[2 * 4 * 8];
    tensor_t tq, tk, tv, tso;
    int64_t qs[4] = {1, 2, 4, 8};
#define Q tens(&tq, q, 4, qs, NULL)
#define K tens(&tk, q, 4, qs, NULL)
#define V tens(&tv, q, 4, qs, NULL)
#define OUT tens(&tso, o, 4, qs, NULL)
    EXPECT_ST(da_scaled_dot_product_attention(Q, K, V, NULL, NULL, OUT), DA_OK);
    EXPECT_ERR(da_scaled_dot_product_attention(NULL, K, V, NULL, NULL, OUT), DA_ERR_INVALID_ARGUMENT, "query");
    EXPECT_ERR(da_scaled_dot_product_attention(Q, NULL, V, NULL, NULL, OUT), DA_ERR_INVALID_ARGUMENT, "key");
    EXPECT_ERR(da_scaled_dot_product_attention(Q, K, NULL, NULL, NULL, OUT), DA_ERR_INVALID_ARGUMENT, "value");
    EXPECT_ERR(da_scaled_dot_product_attention(Q, K, V, NULL, NULL, NULL), DA_ERR_INVALID_ARGUMENT, "out");
    EXPECT_ST(da_scaled_dot_product_attention(NULL, NULL, NULL, NULL, NULL, NULL), DA_ERR_INVALID_ARGUMENT);
#undef Q
#undef K
#undef V
#undef OUT
    da_attention_destroy(a);
}

static void test_handles(void) {
    da_attention a = small_module();
    if (!a) return;
    float x[2 * 3 * 16], o[96];
    fill_det(x, 96, 2, 1);
    tensor_t tx, to;
    int64_t xs[3] = {2, 3, 16};
    da_forward_args args;
    da_forward_args_init(&args, sizeof args);
    args.hidden_states = tens(&tx, x, 3, xs, NULL);
    EXPECT_ST(da_attention_forward(a, &args, tens(&to, o, 3, xs, NULL), 1), DA_OK);
    da_attention_destroy(a);
    /* use after destroy */
    EXPECT_ERR(da_attention_forward(a, &args, tens(&to, o, 3, xs, NULL), 1), DA_ERR_INVALID_HANDLE, "attention");
    da_attention_info info;
    info.struct_size = sizeof info;
    EXPECT_ST(da_attention_get_info(a, &info), DA_ERR_INVALID_HANDLE);
    int64_t count;
    EXPECT_ST(da_attention_weight_count(a, &count), DA_ERR_INVALID_HANDLE);
    da_attention_destroy(a); /* double destroy: ignored */
    CHECK(1, "double destroy did not crash");
    /* the slot reused by a new module: the old handle still answers INVALID_HANDLE */
    da_attention b = small_module();
    EXPECT_ST(da_attention_get_info(a, &info), DA_ERR_INVALID_HANDLE);
    da_attention_destroy(a); /* must not destroy b */
    EXPECT_ST(da_attention_get_info(b, &info), DA_OK);
    da_attention_destroy(b);
    /* made-up values */
    static const uintptr_t fake[] = {0x1234, 0x1, 0xdeadbeef, (uintptr_t)-1, 0xA100000001000001ull};
    for (size_t i = 0; i < sizeof fake / sizeof fake[0]; i++) {
        da_attention f = (da_attention)fake[i];
        EXPECT_ST(da_attention_get_info(f, &info), DA_ERR_INVALID_HANDLE);
        EXPECT_ST(da_attention_forward(f, &args, tens(&to, o, 3, xs, NULL), 1), DA_ERR_INVALID_HANDLE);
        da_attention_destroy(f);
    }
    /* a pointer to something that is not a handle */
    da_attention p = (da_attention)(void *)&args;
    EXPECT_ST(da_attention_get_info(p, &info), DA_ERR_INVALID_HANDLE);
    da_attention_destroy(p);
    CHECK(args.struct_size == sizeof args, "destroy of a non-handle pointer did not touch the memory");
}

static void test_struct_sizes(void) {
    da_attention a = small_module();
    if (!a) return;
    da_attention_config cfg;
    EXPECT_ERR(da_attention_config_init(&cfg, 0), DA_ERR_INVALID_ARGUMENT, "struct_size");
    EXPECT_ST(da_attention_config_init(&cfg, 8), DA_ERR_INVALID_ARGUMENT);
    EXPECT_ST(da_attention_config_init(&cfg, sizeof cfg - 1), DA_ERR_INVALID_ARGUMENT);
    da_processor_config pc;
    EXPECT_ST(da_processor_config_init(&pc, 0, 1), DA_ERR_INVALID_ARGUMENT);
    EXPECT_ST(da_processor_config_init(&pc, 4, 1), DA_ERR_INVALID_ARGUMENT);
    da_forward_args args;
    EXPECT_ST(da_forward_args_init(&args, 0), DA_ERR_INVALID_ARGUMENT);
    EXPECT_ST(da_forward_args_init(&args, sizeof args - 1), DA_ERR_INVALID_ARGUMENT);
    da_sdpa_options so;
    EXPECT_ST(da_sdpa_options_init(&so, 0), DA_ERR_INVALID_ARGUMENT);
    EXPECT_ST(da_sdpa_options_init(&so, 3), DA_ERR_INVALID_ARGUMENT);

    da_attention_config_init(&cfg, sizeof cfg);
    cfg.query_dim = 16;
    da_attention b = NULL;
    cfg.struct_size = 0;
    EXPECT_ERR(da_attention_create(&cfg, &b), DA_ERR_INVALID_ARGUMENT, "struct_size");
    cfg.struct_size = 16;
    EXPECT_ST(da_attention_create(&cfg, &b), DA_ERR_INVALID_ARGUMENT);
    CHECK(b == NULL, "no handle on failure");
    cfg.struct_size = 0;
    EXPECT_ST(da_attention_get_config(a, &cfg), DA_ERR_INVALID_ARGUMENT);
    da_attention_info info;
    info.struct_size = 0;
    EXPECT_ERR(da_attention_get_info(a, &info), DA_ERR_INVALID_ARGUMENT, "struct_size");
    info.struct_size = 8;
    EXPECT_ST(da_attention_get_info(a, &info), DA_ERR_INVALID_ARGUMENT);
    pc.struct_size = 0;
    pc.kind = 1;
    EXPECT_ST(da_attention_set_processor(a, &pc), DA_ERR_INVALID_ARGUMENT);
    EXPECT_ST(da_attention_get_processor(a, &pc), DA_ERR_INVALID_ARGUMENT);
    da_weight_info wi;
    wi.struct_size = 1;
    EXPECT_ST(da_attention_weight_info(a, 0, &wi), DA_ERR_INVALID_ARGUMENT);
    float x[96], o[96];
    fill_det(x, 96, 1, 1);
    tensor_t tx, to;
    int64_t xs[3] = {2, 3, 16};
    da_forward_args_init(&args, sizeof args);
    args.hidden_states = tens(&tx, x, 3, xs, NULL);
    da_output_shapes os;
    os.struct_size = 0;
    EXPECT_ST(da_attention_output_shapes(a, &args, &os), DA_ERR_INVALID_ARGUMENT);
    args.struct_size = 0;
    EXPECT_ERR(da_attention_forward(a, &args, tens(&to, o, 3, xs, NULL), 1), DA_ERR_INVALID_ARGUMENT, "struct_size");
    args.struct_size = 8;
    EXPECT_ST(da_attention_forward(a, &args, tens(&to, o, 3, xs, NULL), 1), DA_ERR_INVALID_ARGUMENT);
    da_attention_destroy(a);
}

static void expect_create_fails(da_attention_config *c, da_status want, const char *substr, const char *what) {
    da_attention a = (da_attention)0x1;
    da_status st = da_attention_create(c, &a);
    capi_expect_status(st, want, substr, what, __FILE__, __LINE__);
    CHECK(a == NULL, "%s: *out is NULL on failure", what);
    if (st == DA_OK) da_attention_destroy(a);
}

static da_status create_and_destroy(void *p) {
    da_attention a = NULL;
    da_status st = da_attention_create((const da_attention_config *)p, &a);
    da_attention_destroy(a);
    return st;
}

static void absurd_create_check(da_attention_config *c, const char *what) {
    char msg[512];
    int st = run_isolated(create_and_destroy, c, msg, sizeof msg);
    if (st <= ISOLATED_CRASHED)
        CHECK(0, "%s: create crashed the process (signal %d) instead of returning a status: %.*s", what,
              ISOLATED_CRASHED - st, (int)strcspn(msg, "\n"), msg);
    else
        CHECK((st == DA_ERR_INVALID_ARGUMENT || st == DA_ERR_OUT_OF_MEMORY) && msg[0] != '\0', "%s: %s (%s)", what,
              st >= 0 ? da_status_name(st) : "not run", msg);
}

static void test_bad_configs(void) {
    da_attention_config c;
#define RESET() (da_attention_config_init(&c, sizeof c), c.query_dim = 16, c.heads = 2, c.dim_head = 8)
    RESET();
    c.query_dim = 0;
    expect_create_fails(&c, DA_ERR_INVALID_ARGUMENT, "query_dim", "query_dim 0");
    c.query_dim = -5;
    expect_create_fails(&c, DA_ERR_INVALID_ARGUMENT, "query_dim", "query_dim -5");
    c.query_dim = (int64_t)1 << 40;
    expect_create_fails(&c, DA_ERR_INVALID_ARGUMENT, "query_dim", "query_dim 1<<40");
    c.query_dim = INT64_MAX;
    expect_create_fails(&c, DA_ERR_INVALID_ARGUMENT, "query_dim", "query_dim INT64_MAX");
    RESET();
    c.heads = 0;
    expect_create_fails(&c, DA_ERR_INVALID_ARGUMENT, "heads", "heads 0");
    c.heads = -1;
    expect_create_fails(&c, DA_ERR_INVALID_ARGUMENT, "heads", "heads -1");
    RESET();
    c.dim_head = 0;
    expect_create_fails(&c, DA_ERR_INVALID_ARGUMENT, "dim_head", "dim_head 0");
    RESET();
    /* a product that overflows although each size is modest: 2^20 heads × 2^20 dim_head */
    c.heads = (int64_t)1 << 20;
    c.dim_head = (int64_t)1 << 20;
    {
        da_attention a = NULL;
        da_status st = da_attention_create(&c, &a);
        CHECK(st == DA_ERR_INVALID_ARGUMENT || st == DA_ERR_OUT_OF_MEMORY, "inner_dim 2^40: %s (%s)", da_status_name(st),
              da_last_error());
        CHECK(msg_nonempty(), "inner_dim 2^40 has a message");
        if (st == DA_OK) da_attention_destroy(a);
    }
    RESET();
    /* Each size is within the per-field limit (<= 2^24) and heads·dim_head = 2^24 is allowed, but
     * the weights would hold 2^24 × 2^22 floats (256 TiB): create must answer with a status
     * (DA_ERR_INVALID_ARGUMENT or DA_ERR_OUT_OF_MEMORY), not abort. Run in a child process so
     * that an abort is counted as a failure. */
    c.query_dim = (int64_t)1 << 22;
    c.cross_attention_dim = (int64_t)1 << 24;
    c.heads = (int64_t)1 << 12;
    c.dim_head = (int64_t)1 << 12;
    absurd_create_check(&c, "weights of 2^24 x 2^22 floats (query_dim 2^22, heads 2^12, dim_head 2^12)");
    RESET();
    c.query_dim = (int64_t)1 << 24; /* to_q: 16 × 2^24 floats = 1 GiB — legal but big; to_k... */
    c.cross_attention_dim = (int64_t)1 << 24;
    c.heads = (int64_t)1 << 10;
    c.dim_head = (int64_t)1 << 14;
    absurd_create_check(&c, "weights of 2^24 x 2^24 floats (query_dim 2^24, inner 2^24)");
    RESET();
    c.cross_attention_dim = -3;
    expect_create_fails(&c, DA_ERR_INVALID_ARGUMENT, "cross_attention_dim", "cross_attention_dim -3");
    RESET();
    c.out_dim = -1;
    expect_create_fails(&c, DA_ERR_INVALID_ARGUMENT, "out_dim", "out_dim -1");
    RESET();
    c.kv_heads = -2;
    expect_create_fails(&c, DA_ERR_INVALID_ARGUMENT, "kv_heads", "kv_heads -2");
    RESET();
    c.qk_norm = 99;
    expect_create_fails(&c, DA_ERR_VALUE, "unknown qk_norm", "qk_norm 99");
    RESET();
    c.qk_norm = -1;
    expect_create_fails(&c, DA_ERR_VALUE, "unknown qk_norm", "qk_norm -1");
    RESET();
    c.cross_attention_norm = 7;
    expect_create_fails(&c, DA_ERR_VALUE, "cross_attention_norm", "cross_attention_norm 7");
    RESET();
    c.processor = 9999;
    expect_create_fails(&c, DA_ERR_NOT_FOUND, "9999", "processor kind 9999");
    RESET();
    c.added_proj_bias = 5;
    {
        da_attention a = NULL;
        da_status st = da_attention_create(&c, &a);
        CHECK(st == DA_ERR_INVALID_ARGUMENT && msg_contains("added_proj_bias"), "tristate 5: %s (%s)", da_status_name(st),
              da_last_error());
        if (st == DA_OK) da_attention_destroy(a);
    }
    /* diffusers' construction errors */
    RESET();
    c.only_cross_attention = 1;
    expect_create_fails(&c, DA_ERR_VALUE, "added_kv_proj_dim", "only_cross_attention without added_kv_proj_dim");
    RESET();
    c.norm_num_groups = 5;
    expect_create_fails(&c, DA_ERR_VALUE, NULL, "query_dim 16 not divisible by 5 groups");
    RESET();
    c.spatial_norm_dim = 4; /* query_dim 16 not divisible by SpatialNorm's 32 groups */
    expect_create_fails(&c, DA_ERR_VALUE, NULL, "spatial_norm with query_dim 16");
    RESET();
    c.qk_norm = DA_QK_NORM_LAYER_NORM_ACROSS_HEADS;
    expect_create_fails(&c, DA_ERR_TYPE, NULL, "across-heads qk_norm without kv_heads");
    RESET();
    c.qk_norm = DA_QK_NORM_L2;
    c.added_kv_proj_dim = 8;
    expect_create_fails(&c, DA_ERR_VALUE, NULL, "l2 qk_norm with added_kv_proj_dim");
    RESET();
    c.eps = NAN;
    {
        da_attention a = NULL;
        da_status st = da_attention_create(&c, &a); /* accepted or rejected, never a crash */
        CHECK(st == DA_OK || msg_nonempty(), "eps NaN: %s", da_status_name(st));
        da_attention_destroy(a);
    }
#undef RESET
}

static void test_bad_tensors(void) {
    da_attention a = small_module();
    if (!a) return;
    float x[96], o[96];
    fill_det(x, 96, 1, 1);
    tensor_t tx, to;
    int64_t xs[3] = {2, 3, 16};
    da_forward_args args;
    da_forward_args_init(&args, sizeof args);
    DLTensor *h = tens(&tx, x, 3, xs, NULL);
    args.hidden_states = h;
#define FWD() da_attention_forward(a, &args, tens(&to, o, 3, xs, NULL), 1)
    EXPECT_ST(FWD(), DA_OK);
    tx.shape[1] = -1;
    EXPECT_ERR(FWD(), DA_ERR_SHAPE, "hidden_states");
    tx.shape[1] = 3;
    h->ndim = 9;
    EXPECT_ERR(FWD(), DA_ERR_SHAPE, "hidden_states");
    h->ndim = -1;
    EXPECT_ERR(FWD(), DA_ERR_SHAPE, "hidden_states");
    h->ndim = INT32_MIN;
    EXPECT_ST(FWD(), DA_ERR_SHAPE);
    h->ndim = 3;
    /* shape product overflow: 2^40 × 2^40 × 16 */
    tx.shape[0] = (int64_t)1 << 40;
    tx.shape[1] = (int64_t)1 << 40;
    {
        da_status st = FWD();
        CHECK((st == DA_ERR_SHAPE || st == DA_ERR_OUT_OF_MEMORY || st == DA_ERR_INVALID_ARGUMENT) && msg_nonempty(),
              "shape product overflow: %s (%s)", da_status_name(st), da_last_error());
    }
    tx.shape[0] = INT64_MAX;
    tx.shape[1] = INT64_MAX;
    {
        da_status st = FWD();
        CHECK(st != DA_OK && msg_nonempty(), "INT64_MAX sizes: %s (%s)", da_status_name(st), da_last_error());
    }
    tx.shape[0] = 2;
    tx.shape[1] = 3;
    /* NULL data with a non-zero size; NULL shape */
    h->data = NULL;
    EXPECT_ERR(FWD(), DA_ERR_INVALID_ARGUMENT, "data");
    h->data = x;
    h->shape = NULL;
    EXPECT_ERR(FWD(), DA_ERR_INVALID_ARGUMENT, "shape");
    h->shape = tx.shape;
    /* absurd strides */
    h->strides = tx.strides;
    tx.strides[0] = INT64_MAX;
    tx.strides[1] = 16;
    tx.strides[2] = 1;
    {
        da_status st = FWD();
        CHECK(st != DA_OK && msg_nonempty(), "stride INT64_MAX: %s (%s)", da_status_name(st), da_last_error());
    }
    tx.strides[0] = (int64_t)1 << 39;
    tx.strides[1] = (int64_t)1 << 39;
    {
        da_status st = FWD();
        CHECK(st != DA_OK && msg_nonempty(), "strides reaching past 2^40: %s (%s)", da_status_name(st), da_last_error());
    }
    h->strides = NULL;
    /* byte_offset absurd */
    h->byte_offset = UINT64_MAX;
    {
        da_status st = FWD();
        CHECK(st != DA_OK && msg_nonempty(), "byte_offset UINT64_MAX: %s (%s)", da_status_name(st), da_last_error());
    }
    h->byte_offset = 0;
    /* dtype and device */
    h->dtype.bits = 64;
    EXPECT_ERR(FWD(), DA_ERR_DTYPE, "hidden_states");
    h->dtype.bits = 32;
    h->dtype.code = kDLBfloat;
    EXPECT_ST(FWD(), DA_ERR_DTYPE);
    h->dtype.code = kDLFloat;
    h->device.device_type = kDLCUDA;
    EXPECT_ERR(FWD(), DA_ERR_DTYPE, "hidden_states");
    h->device.device_type = kDLCUDAHost;
    EXPECT_ST(FWD(), DA_ERR_DTYPE);
    h->device.device_type = kDLCPU;
    /* rank 2 and rank 5 hidden states */
    h->ndim = 2;
    EXPECT_ST(FWD(), DA_ERR_SHAPE);
    h->ndim = 3;
    EXPECT_ST(FWD(), DA_OK);

    /* wrong num_outputs, wrong output shapes: nothing written */
    for (int i = 0; i < 96; i++) o[i] = 3.0f;
    tensor_t outs2[2];
    tens(&outs2[0], o, 3, xs, NULL);
    tens(&outs2[1], o, 3, xs, NULL);
    EXPECT_ERR(da_attention_forward(a, &args, &outs2[0].t, 0), DA_ERR_INVALID_ARGUMENT, "num_outputs");
    EXPECT_ERR(da_attention_forward(a, &args, &outs2[0].t, 2), DA_ERR_INVALID_ARGUMENT, "num_outputs");
    EXPECT_ST(da_attention_forward(a, &args, &outs2[0].t, -1), DA_ERR_INVALID_ARGUMENT);
    EXPECT_ST(da_attention_forward(a, &args, &outs2[0].t, INT32_MAX), DA_ERR_INVALID_ARGUMENT);
    int64_t wrong[3] = {2, 3, 15};
    EXPECT_ERR(da_attention_forward(a, &args, tens(&to, o, 3, wrong, NULL), 1), DA_ERR_SHAPE, "outputs[0]");
    int64_t wrong4[4] = {2, 3, 16, 1};
    EXPECT_ST(da_attention_forward(a, &args, tens(&to, o, 4, wrong4, NULL), 1), DA_ERR_SHAPE);
    DLTensor *od = tens(&to, o, 3, xs, NULL);
    od->dtype.bits = 64;
    EXPECT_ST(da_attention_forward(a, &args, od, 1), DA_ERR_DTYPE);
    od = tens(&to, NULL, 3, xs, NULL);
    EXPECT_ST(da_attention_forward(a, &args, od, 1), DA_ERR_INVALID_ARGUMENT);
    int untouched = 1;
    for (int i = 0; i < 96; i++) untouched &= o[i] == 3.0f;
    CHECK(untouched, "nothing written to the outputs on failure");

    /* forward_alloc: capacity 0 → error, nothing allocated; num_outputs set to 0 */
    DLManagedTensor *mo[DA_MAX_OUTPUTS] = {0};
    int32_t n = 77;
    EXPECT_ERR(da_attention_forward_alloc(a, &args, mo, 0, &n), DA_ERR_INVALID_ARGUMENT, "capacity");
    CHECK(n == 0 && mo[0] == NULL, "failed forward_alloc returns no tensors (n=%d)", n);
    EXPECT_ST(da_attention_forward_alloc(a, &args, mo, -3, &n), DA_ERR_INVALID_ARGUMENT);

    /* weights with absurd geometries */
    float w[256];
    tensor_t tw;
    int64_t ws[2] = {16, 16};
    DLTensor *wt = tens(&tw, w, 2, ws, NULL);
    wt->ndim = 9;
    EXPECT_ST(da_attention_set_weight(a, "to_q.weight", wt), DA_ERR_SHAPE);
    wt->ndim = -1;
    EXPECT_ST(da_attention_get_weight(a, "to_q.weight", wt), DA_ERR_SHAPE);
    wt->ndim = 2;
    tw.shape[0] = (int64_t)1 << 40;
    tw.shape[1] = (int64_t)1 << 40;
    {
        da_status st = da_attention_get_weight(a, "to_q.weight", wt);
        CHECK(st != DA_OK && msg_nonempty(), "get_weight into 2^40×2^40: %s", da_status_name(st));
    }
    tw.shape[0] = tw.shape[1] = 16;
    wt->data = NULL;
    EXPECT_ST(da_attention_set_weight(a, "to_q.weight", wt), DA_ERR_INVALID_ARGUMENT);
    EXPECT_ST(da_attention_get_weight(a, "to_q.weight", wt), DA_ERR_INVALID_ARGUMENT);

    /* helper with absurd geometry */
    DLManagedTensor *m = NULL;
    h->ndim = 9;
    EXPECT_ST(da_attention_head_to_batch_dim(a, h, 3, &m), DA_ERR_SHAPE);
    h->ndim = 3;
    EXPECT_ST(da_attention_prepare_attention_mask(a, h, (int64_t)1 << 40, 2, 3, &m), DA_ERR_INVALID_ARGUMENT);
    EXPECT_ST(da_attention_prepare_attention_mask(a, h, 3, -1, 3, &m), DA_ERR_INVALID_ARGUMENT);
    /* SDPA with absurd geometries */
    float q[64];
    tensor_t tq, tk, tv, tso;
    int64_t qs[4] = {1, 2, 4, 8};
    DLTensor *qt = tens(&tq, q, 4, qs, NULL);
    tens(&tk, q, 4, qs, NULL);
    tens(&tv, q, 4, qs, NULL);
    tens(&tso, o, 4, qs, NULL);
    tq.shape[2] = -4;
    EXPECT_ST(da_scaled_dot_product_attention(qt, &tk.t, &tv.t, NULL, NULL, &tso.t), DA_ERR_SHAPE);
    tq.shape[2] = (int64_t)1 << 40;
    tq.shape[3] = (int64_t)1 << 40;
    {
        da_status st = da_scaled_dot_product_attention(qt, &tk.t, &tv.t, NULL, NULL, &tso.t);
        CHECK(st != DA_OK && msg_nonempty(), "sdpa 2^40×2^40 query: %s", da_status_name(st));
    }
    tq.shape[2] = 4;
    tq.shape[3] = 8;
    qt->ndim = 9;
    EXPECT_ST(da_scaled_dot_product_attention(qt, &tk.t, &tv.t, NULL, NULL, &tso.t), DA_ERR_SHAPE);
    qt->ndim = 4;
    qt->data = NULL;
    EXPECT_ST(da_scaled_dot_product_attention(qt, &tk.t, &tv.t, NULL, NULL, &tso.t), DA_ERR_INVALID_ARGUMENT);
    qt->data = q;
    tso.t.shape = NULL;
    EXPECT_ST(da_scaled_dot_product_attention(qt, &tk.t, &tv.t, NULL, NULL, &tso.t), DA_ERR_INVALID_ARGUMENT);
#undef FWD
    da_attention_destroy(a);
}

/* Inputs a caller can really pass (a few MB each) whose intermediate results would need
 * hundreds of GB: the call must return a status (DA_ERR_OUT_OF_MEMORY), not abort. Each runs in a
 * child process so that an abort is counted. */
static da_status big_scores_forward(void *p) {
    int32_t processor = *(int32_t *)p;
    da_attention_config c;
    da_attention_config_init(&c, sizeof c);
    c.query_dim = 8;
    c.heads = 1;
    c.dim_head = 8;
    c.processor = processor;
    da_attention a = NULL;
    da_status st = da_attention_create(&c, &a);
    if (st != DA_OK) return st;
    enum { L = 1 << 18 }; /* scores would be 2^36 floats = 256 GiB */
    float *x = calloc((size_t)L * 8, sizeof(float)), *o = calloc((size_t)L * 8, sizeof(float));
    tensor_t tx, to;
    int64_t xs[3] = {1, L, 8};
    da_forward_args args;
    da_forward_args_init(&args, sizeof args);
    args.hidden_states = tens(&tx, x, 3, xs, NULL);
    da_set_num_threads(1);
    st = da_attention_forward(a, &args, tens(&to, o, 3, xs, NULL), 1);
    da_attention_destroy(a);
    free(x), free(o);
    return st;
}

static void expect_isolated_status(da_status (*fn)(void *), void *arg, const char *what) {
    char msg[512];
    int st = run_isolated(fn, arg, msg, sizeof msg);
    if (st <= ISOLATED_CRASHED)
        CHECK(0, "%s: crashed the process (signal %d) instead of returning DA_ERR_OUT_OF_MEMORY: %.*s", what,
              ISOLATED_CRASHED - st, (int)strcspn(msg, "\n"), msg);
    else
        CHECK(st != DA_OK && st >= 0 && msg[0] != '\0', "%s: %s (%s)", what, st >= 0 ? da_status_name(st) : "not run", msg);
}

static void test_huge_intermediates(void) {
    int32_t p1 = DA_PROCESSOR_ATTN_PROCESSOR;
    expect_isolated_status(big_scores_forward, &p1, "AttnProcessor forward with L = S = 2^18 (scores 256 GiB)");
}

static void test_threads_setting(void) {
    int32_t before = da_get_num_threads();
    CHECK(before >= 1 && before <= 1024, "da_get_num_threads() = %d", before);
    EXPECT_ERR(da_set_num_threads(0), DA_ERR_INVALID_ARGUMENT, "num_threads");
    EXPECT_ERR(da_set_num_threads(100000), DA_ERR_INVALID_ARGUMENT, "num_threads");
    EXPECT_ST(da_set_num_threads(-1), DA_ERR_INVALID_ARGUMENT);
    EXPECT_ST(da_set_num_threads(1025), DA_ERR_INVALID_ARGUMENT);
    CHECK(da_get_num_threads() == before, "failed set leaves the count at %d (got %d)", before, da_get_num_threads());

    /* 1 vs 2 threads: bitwise identical forward and SDPA results */
    da_attention_config c;
    da_attention_config_init(&c, sizeof c);
    c.query_dim = 64;
    c.heads = 4;
    c.dim_head = 16;
    da_attention a = make_attention(&c, 99);
    if (!a) return;
    enum { B = 2, L = 300, C = 64 };
    float *x = alloc_floats(B * L * C);
    fill_det(x, B * L * C, 17, 1);
    tensor_t tx, to;
    int64_t xs[3] = {B, L, C};
    da_forward_args args;
    da_forward_args_init(&args, sizeof args);
    args.hidden_states = tens(&tx, x, 3, xs, NULL);
    enum { SB = 1, SH = 3, SN = 333, SD = 64 };
    size_t sn = (size_t)SB * SH * SN * SD;
    float *q = alloc_floats(sn);
    fill_det(q, sn, 5, 1);
    int64_t ss[4] = {SB, SH, SN, SD};
    tensor_t tq, tk, tv, tso;
    float *res[2][2], *sres[2][2];
    for (int threads = 1; threads <= 2; threads++) {
        EXPECT_ST(da_set_num_threads(threads), DA_OK);
        CHECK(da_get_num_threads() == threads, "get_num_threads %d", da_get_num_threads());
        for (int proc = 0; proc < 2; proc++) {
            da_processor_config pc;
            da_processor_config_init(&pc, sizeof pc, proc ? DA_PROCESSOR_ATTN_PROCESSOR : DA_PROCESSOR_ATTN_PROCESSOR_2_0);
            EXPECT_ST(da_attention_set_processor(a, &pc), DA_OK);
            res[threads - 1][proc] = alloc_floats(B * L * C);
            EXPECT_ST(da_attention_forward(a, &args, tens(&to, res[threads - 1][proc], 3, xs, NULL), 1), DA_OK);
        }
        for (int alg = 1; alg <= 2; alg++) {
            da_sdpa_options opt;
            da_sdpa_options_init(&opt, sizeof opt);
            opt.algorithm = alg;
            sres[threads - 1][alg - 1] = alloc_floats(sn);
            EXPECT_ST(da_scaled_dot_product_attention(tens(&tq, q, 4, ss, NULL), tens(&tk, q, 4, ss, NULL),
                                                      tens(&tv, q, 4, ss, NULL), NULL, &opt,
                                                      tens(&tso, sres[threads - 1][alg - 1], 4, ss, NULL)),
                      DA_OK);
        }
    }
    for (int alg = 0; alg < 2; alg++) {
        CHECK(memcmp(sres[0][alg], sres[1][alg], sizeof(float) * sn) == 0, "SDPA (%s) bitwise identical for 1 and 2 threads",
              alg ? "FLASH" : "MATH");
        free(sres[0][alg]), free(sres[1][alg]);
    }
    for (int proc = 0; proc < 2; proc++) {
        int differ = 0;
        for (int i = 0; i < B * L * C; i++) differ += res[0][proc][i] != res[1][proc][i];
        CHECK(differ == 0, "forward (%s) of (%d, %d, %d) bitwise identical for 1 and 2 threads: %d elements differ, max abs %g",
              proc ? "AttnProcessor" : "AttnProcessor2_0", B, L, C, differ,
              max_abs_diff(res[0][proc], res[1][proc], (size_t)B * L * C));
        free(res[0][proc]), free(res[1][proc]);
    }
    EXPECT_ST(da_set_num_threads(2), DA_OK);
    free(x), free(q);
    da_attention_destroy(a);
}

void test_misuse(void) {
    test_nulls();
    test_handles();
    test_struct_sizes();
    test_bad_configs();
    test_bad_tensors();
    test_huge_intermediates();
    test_threads_setting();
}
