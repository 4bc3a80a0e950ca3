/* Attention.forward from C: caller tensors vs forward_alloc, AttnProcessor vs AttnProcessor2_0,
 * a naive double-precision reference, output_shapes, 4-D input, masks. */
#include "capi_test.h"

/* Reads a weight into a new buffer (NULL if the module has no such weight). */
static float *weight(da_attention a, const char *name, int64_t n0, int64_t n1) {
    float *w = alloc_floats((size_t)(n0 * (n1 ? n1 : 1)));
    tensor_t t;
    int64_t shape[2] = {n0, n1};
    if (da_attention_get_weight(a, name, tens(&t, w, n1 ? 2 : 1, shape, NULL)) != DA_OK) {
        free(w);
        return NULL;
    }
    return w;
}

/* y (n, out) = x (n, in) · Wᵀ + b, in double */
static void linear(const double *x, int64_t n, int64_t in, const float *w, const float *b, int64_t out, double *y) {
    for (int64_t i = 0; i < n; i++)
        for (int64_t o = 0; o < out; o++) {
            double s = b ? b[o] : 0.0;
            for (int64_t k = 0; k < in; k++) s += x[i * in + k] * w[o * in + k];
            y[i * out + o] = s;
        }
}

/* Reference Attention.forward for a module without norms: x (B, L, C), e (B, S, Ce) or NULL,
 * additive mask (B, 1, S) or NULL. Reads the weights from the module. */
static void reference_forward(da_attention a, int64_t B, int64_t L, int64_t C, const float *x, int64_t S, int64_t Ce,
                              const float *e, const float *mask, float *out) {
    da_attention_info info;
    info.struct_size = sizeof info;
    da_attention_get_info(a, &info);
    da_attention_config cfg;
    da_attention_config_init(&cfg, sizeof cfg);
    da_attention_get_config(a, &cfg);
    int64_t inner = info.inner_dim, H = info.heads, D = inner / H, Co = info.out_dim;
    if (!e) {
        S = L;
        Ce = C;
    }
    float *wq = weight(a, "to_q.weight", inner, C), *wk = weight(a, "to_k.weight", inner, Ce);
    float *wv = weight(a, "to_v.weight", inner, Ce), *wo = weight(a, "to_out.0.weight", Co, inner);
    float *bq = weight(a, "to_q.bias", inner, 0), *bk = weight(a, "to_k.bias", inner, 0);
    float *bv = weight(a, "to_v.bias", inner, 0), *bo = weight(a, "to_out.0.bias", Co, 0);
    double *xd = calloc((size_t)(L * C), sizeof(double)), *ed = calloc((size_t)(S * Ce), sizeof(double));
    double *q = calloc((size_t)(L * inner), sizeof(double)), *k = calloc((size_t)(S * inner), sizeof(double));
    double *v = calloc((size_t)(S * inner), sizeof(double)), *o = calloc((size_t)(L * inner), sizeof(double));
    double *y = calloc((size_t)(L * Co), sizeof(double)), *p = calloc((size_t)S, sizeof(double));
    double scale = info.processor == DA_PROCESSOR_ATTN_PROCESSOR ? info.scale : 1.0 / sqrt((double)D);
    for (int64_t b = 0; b < B; b++) {
        for (int64_t i = 0; i < L * C; i++) xd[i] = x[b * L * C + i];
        for (int64_t i = 0; i < S * Ce; i++) ed[i] = e ? e[b * S * Ce + i] : xd[i];
        linear(xd, L, C, wq, bq, inner, q);
        linear(ed, S, Ce, wk, bk, inner, k);
        linear(ed, S, Ce, wv, bv, inner, v);
        for (int64_t h = 0; h < H; h++)
            for (int64_t i = 0; i < L; i++) {
                double m = -INFINITY, sum = 0;
                for (int64_t j = 0; j < S; j++) {
                    double s = 0;
                    for (int64_t d = 0; d < D; d++) s += q[i * inner + h * D + d] * k[j * inner + h * D + d];
                    p[j] = s * scale + (mask ? mask[b * S + j] : 0.0);
                    if (p[j] > m) m = p[j];
                }
                for (int64_t j = 0; j < S; j++) sum += (p[j] = exp(p[j] - m));
                for (int64_t d = 0; d < D; d++) {
                    double s = 0;
                    for (int64_t j = 0; j < S; j++) s += p[j] / sum * v[j * inner + h * D + d];
                    o[i * inner + h * D + d] = s;
                }
            }
        linear(o, L, inner, wo, bo, Co, y);
        for (int64_t i = 0; i < L * Co; i++) {
            double r = y[i];
            if (cfg.residual_connection) r += xd[i];
            out[b * L * Co + i] = (float)(r / cfg.rescale_output_factor);
        }
    }
    free(wq), free(wk), free(wv), free(wo), free(bq), free(bk), free(bv), free(bo);
    free(xd), free(ed), free(q), free(k), free(v), free(o), free(y), free(p);
}

static int set_proc(da_attention a, int32_t kind) {
    da_processor_config pc;
    if (da_processor_config_init(&pc, sizeof pc, kind) != DA_OK) return 0;
    return da_attention_set_processor(a, &pc) == DA_OK;
}

static void test_self_attention(void) {
    enum { B = 2, L = 10, C = 32 };
    da_attention_config c;
    da_attention_config_init(&c, sizeof c);
    c.query_dim = C;
    c.heads = 2;
    c.dim_head = 16;
    da_attention a = make_attention(&c, 11);
    if (!a) return;
    float *x = alloc_floats(B * L * C), *out = alloc_floats(B * L * C), *ref = alloc_floats(B * L * C);
    float *out1 = alloc_floats(B * L * C);
    fill_det(x, B * L * C, 5, 1.0f);
    tensor_t tx, to;
    int64_t shape[3] = {B, L, C};
    da_forward_args args;
    EXPECT_ST(da_forward_args_init(&args, sizeof args), DA_OK);
    args.hidden_states = tens(&tx, x, 3, shape, NULL);

    da_output_shapes os;
    memset(&os, 0, sizeof os);
    os.struct_size = sizeof os;
    EXPECT_ST(da_attention_output_shapes(a, &args, &os), DA_OK);
    CHECK(os.count == 1 && os.ndim[0] == 3 && os.shape[0][0] == B && os.shape[0][1] == L && os.shape[0][2] == C,
          "output_shapes count %d ndim %d (%lld,%lld,%lld)", os.count, os.ndim[0], (long long)os.shape[0][0],
          (long long)os.shape[0][1], (long long)os.shape[0][2]);

    EXPECT_ST(da_attention_forward(a, &args, tens(&to, out, 3, shape, NULL), 1), DA_OK);
    reference_forward(a, B, L, C, x, 0, 0, NULL, NULL, ref);
    double r = max_rel_diff(out, ref, B * L * C);
    CHECK(r < 1e-4, "AttnProcessor2_0 vs double reference: rel %g", r);

    /* forward_alloc gives the same bits */
    DLManagedTensor *outs[DA_MAX_OUTPUTS] = {0};
    int32_t n = -1;
    EXPECT_ST(da_attention_forward_alloc(a, &args, outs, DA_MAX_OUTPUTS, &n), DA_OK);
    CHECK(n == 1 && outs[0] != NULL, "forward_alloc returned %d tensors", n);
    if (n == 1 && outs[0]) {
        DLTensor *t = &outs[0]->dl_tensor;
        CHECK(t->ndim == 3 && t->shape[0] == B && t->shape[1] == L && t->shape[2] == C && t->dtype.code == kDLFloat &&
                  t->dtype.bits == 32 && t->dtype.lanes == 1 && t->device.device_type == kDLCPU && t->data != NULL,
              "allocated tensor metadata");
        int compact = t->strides == NULL || (t->strides[2] == 1 && t->strides[1] == C && t->strides[0] == L * C);
        CHECK(compact, "allocated tensor is compact");
        if (compact)
            CHECK(memcmp((char *)t->data + t->byte_offset, out, sizeof(float) * B * L * C) == 0,
                  "forward_alloc bitwise equal to forward into caller tensor");
        da_tensor_free(outs[0]);
    }
    /* freeing through the tensor's own deleter is equivalent */
    n = 0;
    EXPECT_ST(da_attention_forward_alloc(a, &args, outs, 1, &n), DA_OK);
    if (n == 1 && outs[0]) {
        CHECK(outs[0]->deleter != NULL, "allocated tensor has a deleter");
        if (outs[0]->deleter) outs[0]->deleter(outs[0]);
    }
    da_tensor_free(NULL);

    /* AttnProcessor agrees */
    CHECK(set_proc(a, DA_PROCESSOR_ATTN_PROCESSOR), "set AttnProcessor: %s", da_last_error());
    EXPECT_ST(da_attention_forward(a, &args, tens(&to, out1, 3, shape, NULL), 1), DA_OK);
    r = max_rel_diff(out1, out, B * L * C);
    CHECK(r < 1e-5, "AttnProcessor vs AttnProcessor2_0: rel %g", r);

    /* strided (non-contiguous) input: x stored as (L, B, C) */
    float *xt = alloc_floats(B * L * C);
    for (int b = 0; b < B; b++)
        for (int l = 0; l < L; l++)
            for (int ch = 0; ch < C; ch++) xt[(l * B + b) * C + ch] = x[(b * L + l) * C + ch];
    int64_t xs[3] = {C, B * C, 1};
    tensor_t txs;
    args.hidden_states = tens(&txs, xt, 3, shape, xs);
    /* strided output: (B, L, C) inside a (B, L, C + 4) buffer */
    float *padded = alloc_floats(B * L * (C + 4));
    for (int i = 0; i < B * L * (C + 4); i++) padded[i] = 42.0f;
    int64_t ps[3] = {L * (C + 4), C + 4, 1};
    EXPECT_ST(da_attention_forward(a, &args, tens(&to, padded, 3, shape, ps), 1), DA_OK);
    int ok = 1;
    for (int b = 0; b < B; b++)
        for (int l = 0; l < L; l++)
            for (int ch = 0; ch < C + 4; ch++) {
                float got = padded[(b * L + l) * (C + 4) + ch];
                ok &= ch < C ? got == out1[(b * L + l) * C + ch] : got == 42.0f;
            }
    CHECK(ok, "strided input and padded strided output give the same values; padding untouched");

    /* 4-D input (B, C, Hs, Ws) with Hs*Ws = L: output (B, C, Hs, Ws) equals the 3-D result transposed */
    float *x4 = alloc_floats(B * L * C), *o4 = alloc_floats(B * L * C);
    for (int b = 0; b < B; b++)
        for (int l = 0; l < L; l++)
            for (int ch = 0; ch < C; ch++) x4[(b * C + ch) * L + l] = x[(b * L + l) * C + ch];
    int64_t s4[4] = {B, C, 2, 5};
    tensor_t t4, to4;
    args.hidden_states = tens(&t4, x4, 4, s4, NULL);
    os.struct_size = sizeof os;
    EXPECT_ST(da_attention_output_shapes(a, &args, &os), DA_OK);
    CHECK(os.count == 1 && os.ndim[0] == 4 && os.shape[0][0] == B && os.shape[0][1] == C && os.shape[0][2] == 2 &&
              os.shape[0][3] == 5,
          "4-D output_shapes ndim %d", os.ndim[0]);
    for (int proc = 0; proc < 2; proc++) {
        CHECK(set_proc(a, proc ? DA_PROCESSOR_ATTN_PROCESSOR_2_0 : DA_PROCESSOR_ATTN_PROCESSOR), "set proc");
        EXPECT_ST(da_attention_forward(a, &args, tens(&to4, o4, 4, s4, NULL), 1), DA_OK);
        double m = 0;
        for (int b = 0; b < B; b++)
            for (int l = 0; l < L; l++)
                for (int ch = 0; ch < C; ch++) {
                    double d = fabs(o4[(b * C + ch) * L + l] - ref[(b * L + l) * C + ch]);
                    if (!(d <= m)) m = d;
                }
        CHECK(m < 1e-4, "4-D input (%s) matches the 3-D reference: max abs %g", proc ? "2_0" : "AttnProcessor", m);
    }
    /* the 3-D output shape is rejected for a 4-D input */
    EXPECT_ST(da_attention_forward(a, &args, tens(&to, out, 3, shape, NULL), 1), DA_ERR_SHAPE);

    /* in place: the output is the input's own memory. Contiguous inputs are read in place, so the
     * library must finish reading before it writes (ForwardAPI.swift: loans end first). */
    CHECK(set_proc(a, DA_PROCESSOR_ATTN_PROCESSOR_2_0), "set proc");
    float *inout = alloc_floats(B * L * C);
    memcpy(inout, x, sizeof(float) * B * L * C);
    args.hidden_states = tens(&tx, inout, 3, shape, NULL);
    EXPECT_ST(da_attention_forward(a, &args, tens(&to, inout, 3, shape, NULL), 1), DA_OK);
    args.hidden_states = tens(&tx, x, 3, shape, NULL);
    EXPECT_ST(da_attention_forward(a, &args, tens(&to, out, 3, shape, NULL), 1), DA_OK);
    CHECK(memcmp(inout, out, sizeof(float) * B * L * C) == 0, "output written over its own input equals the separate output");
    free(inout);

    free(x), free(out), free(ref), free(out1), free(xt), free(padded), free(x4), free(o4);
    da_attention_destroy(a);
}

static void test_cross_attention_masks(void) {
    enum { B = 2, L = 6, C = 24, S = 7, CE = 20 };
    da_attention_config c;
    da_attention_config_init(&c, sizeof c);
    c.query_dim = C;
    c.cross_attention_dim = CE;
    c.heads = 3;
    c.dim_head = 8;
    c.bias = 1;
    da_attention a = make_attention(&c, 23);
    if (!a) return;
    float x[B * L * C], e[B * S * CE], mask[B * S], out[B * L * C], out1[B * L * C], ref[B * L * C];
    fill_det(x, B * L * C, 1, 1.0f);
    fill_det(e, B * S * CE, 2, 1.0f);
    for (int b = 0; b < B; b++)
        for (int s = 0; s < S; s++) mask[b * S + s] = (s + b) % 3 == 0 ? -10000.0f : 0.1f * (float)s;
    int64_t xs[3] = {B, L, C}, es[3] = {B, S, CE}, ms[3] = {B, 1, S};
    tensor_t tx, te, tm, to;
    da_forward_args args;
    da_forward_args_init(&args, sizeof args);
    args.hidden_states = tens(&tx, x, 3, xs, NULL);
    args.encoder_hidden_states = tens(&te, e, 3, es, NULL);
    args.attention_mask = tens(&tm, mask, 3, ms, NULL);
    reference_forward(a, B, L, C, x, S, CE, e, mask, ref);
    EXPECT_ST(da_attention_forward(a, &args, tens(&to, out, 3, xs, NULL), 1), DA_OK);
    double r = max_rel_diff(out, ref, B * L * C);
    CHECK(r < 1e-4, "cross-attention + float mask (B,1,S), 2_0 vs reference: rel %g", r);
    CHECK(set_proc(a, DA_PROCESSOR_ATTN_PROCESSOR), "set AttnProcessor");
    EXPECT_ST(da_attention_forward(a, &args, tens(&to, out1, 3, xs, NULL), 1), DA_OK);
    r = max_rel_diff(out1, out, B * L * C);
    CHECK(r < 1e-5, "cross-attention + float mask: AttnProcessor vs 2_0 rel %g", r);

    /* boolean masks: error under AttnProcessor, accepted under 2_0 and equal to a -inf float mask */
    uint8_t bm[B * S];
    float fm[B * S];
    for (int i = 0; i < B * S; i++) {
        bm[i] = (uint8_t)(i % 4 != 1 ? 1 : 0);
        fm[i] = bm[i] ? 0.0f : -INFINITY;
    }
    tensor_t tb;
    args.attention_mask = tens_bool(&tb, bm, 3, ms, NULL, kDLUInt);
    EXPECT_ERR(da_attention_forward(a, &args, tens(&to, out1, 3, xs, NULL), 1), DA_ERR_DTYPE, "");
    CHECK(set_proc(a, DA_PROCESSOR_ATTN_PROCESSOR_2_0), "set 2_0");
    EXPECT_ST(da_attention_forward(a, &args, tens(&to, out1, 3, xs, NULL), 1), DA_OK);
    args.attention_mask = tens(&tm, fm, 3, ms, NULL);
    EXPECT_ST(da_attention_forward(a, &args, tens(&to, out, 3, xs, NULL), 1), DA_OK);
    r = max_rel_diff(out1, out, B * L * C);
    CHECK(r < 1e-5, "bool mask (kDLUInt/8) == -inf float mask under 2_0: rel %g", r);
    args.attention_mask = tens_bool(&tb, bm, 3, ms, NULL, 6 /* kDLBool */);
    EXPECT_ST(da_attention_forward(a, &args, tens(&to, out1, 3, xs, NULL), 1), DA_OK);
    r = max_rel_diff(out1, out, B * L * C);
    CHECK(r < 1e-5, "bool mask (code 6) == -inf float mask under 2_0: rel %g", r);
    /* 2-D (B, S) bool mask is accepted by 2_0 (attention_processor.py:AttnProcessor2_0.__call__) */
    int64_t m2[2] = {B, S};
    args.attention_mask = tens_bool(&tb, bm, 2, m2, NULL, kDLUInt);
    EXPECT_ST(da_attention_forward(a, &args, tens(&to, out1, 3, xs, NULL), 1), DA_OK);
    r = max_rel_diff(out1, out, B * L * C);
    CHECK(r < 1e-5, "(B, S) bool mask under 2_0: rel %g", r);
    /* a 16-bit "bool" is not a mask dtype */
    args.attention_mask = tens_bool(&tb, bm, 1, (int64_t[]){B * S / 2}, NULL, kDLUInt);
    tb.t.dtype.bits = 16;
    EXPECT_ST(da_attention_forward(a, &args, tens(&to, out1, 3, xs, NULL), 1), DA_ERR_DTYPE);
    /* a mask of the wrong key length: shape error that names sizes */
    int64_t bad[3] = {B, 1, S - 2};
    args.attention_mask = tens(&tm, mask, 3, bad, NULL);
    EXPECT_ST(da_attention_forward(a, &args, tens(&to, out1, 3, xs, NULL), 1), DA_ERR_SHAPE);
    /* encoder width mismatch */
    int64_t ebad[3] = {B, S, CE - 1};
    args.attention_mask = NULL;
    args.encoder_hidden_states = tens(&te, e, 3, ebad, NULL);
    EXPECT_ST(da_attention_forward(a, &args, tens(&to, out1, 3, xs, NULL), 1), DA_ERR_SHAPE);
    /* hidden width mismatch */
    int64_t xbad[3] = {B, L, C - 1};
    args.encoder_hidden_states = NULL;
    args.hidden_states = tens(&tx, x, 3, xbad, NULL);
    EXPECT_ST(da_attention_forward(a, &args, tens(&to, out1, 3, xs, NULL), 1), DA_ERR_SHAPE);
    da_attention_destroy(a);
}

static void test_options(void) {
    /* residual + rescale, group norm, bias: both processors agree; residual/rescale vs reference */
    enum { B = 2, L = 9, C = 16 };
    da_attention_config c;
    da_attention_config_init(&c, sizeof c);
    c.query_dim = C;
    c.heads = 2;
    c.dim_head = 8;
    c.residual_connection = 1;
    c.rescale_output_factor = 2.0;
    c.bias = 1;
    da_attention a = make_attention(&c, 31);
    if (!a) return;
    float x[B * L * C], out[B * L * C], out1[B * L * C], ref[B * L * C];
    fill_det(x, B * L * C, 9, 1.0f);
    int64_t xs[3] = {B, L, C};
    tensor_t tx, to;
    da_forward_args args;
    da_forward_args_init(&args, sizeof args);
    args.hidden_states = tens(&tx, x, 3, xs, NULL);
    EXPECT_ST(da_attention_forward(a, &args, tens(&to, out, 3, xs, NULL), 1), DA_OK);
    reference_forward(a, B, L, C, x, 0, 0, NULL, NULL, ref);
    double r = max_rel_diff(out, ref, B * L * C);
    CHECK(r < 1e-4, "residual_connection + rescale_output_factor 2 vs reference: rel %g", r);
    da_attention_destroy(a);

    c.residual_connection = 0;
    c.rescale_output_factor = 1.0;
    c.norm_num_groups = 4;
    a = make_attention(&c, 37);
    if (!a) return;
    EXPECT_ST(da_attention_forward(a, &args, tens(&to, out, 3, xs, NULL), 1), DA_OK);
    CHECK(set_proc(a, DA_PROCESSOR_ATTN_PROCESSOR), "set AttnProcessor");
    EXPECT_ST(da_attention_forward(a, &args, tens(&to, out1, 3, xs, NULL), 1), DA_OK);
    r = max_rel_diff(out1, out, B * L * C);
    CHECK(r < 1e-5, "group_norm module: AttnProcessor vs 2_0 rel %g", r);
    da_attention_destroy(a);

    /* spatial_norm without temb: an error with a message, not a crash */
    da_attention_config_init(&c, sizeof c);
    c.query_dim = 32;
    c.heads = 2;
    c.dim_head = 16;
    c.spatial_norm_dim = 4;
    EXPECT_ST(da_attention_create(&c, &a), DA_OK);
    float x4[1 * 32 * 2 * 2], o4[1 * 32 * 2 * 2], temb[1 * 4 * 1 * 1] = {0.1f, 0.2f, 0.3f, 0.4f};
    fill_det(x4, 128, 3, 1.0f);
    int64_t s4[4] = {1, 32, 2, 2}, st[4] = {1, 4, 1, 1};
    tensor_t t4, tt;
    args.hidden_states = tens(&t4, x4, 4, s4, NULL);
    da_status s = da_attention_forward(a, &args, tens(&to, o4, 4, s4, NULL), 1);
    CHECK(s != DA_OK && msg_nonempty(), "spatial_norm without temb fails with a message: %s", da_status_name(s));
    args.temb = tens(&tt, temb, 4, st, NULL);
    EXPECT_ST(da_attention_forward(a, &args, tens(&to, o4, 4, s4, NULL), 1), DA_OK);
    da_attention_destroy(a);

    /* pre_only: no to_out → the forward fails with a status (DA_ERR_STATE) */
    da_attention_config_init(&c, sizeof c);
    c.query_dim = 16;
    c.heads = 2;
    c.dim_head = 8;
    c.pre_only = 1;
    EXPECT_ST(da_attention_create(&c, &a), DA_OK);
    args.temb = NULL;
    args.hidden_states = tens(&tx, x, 3, xs, NULL);
    s = da_attention_forward(a, &args, tens(&to, out, 3, xs, NULL), 1);
    CHECK(s != DA_OK && msg_nonempty(), "pre_only forward fails with a message: %s", da_status_name(s));
    da_attention_destroy(a);
}

void test_forward(void) {
    test_self_attention();
    test_cross_attention_masks();
    test_options();
}
