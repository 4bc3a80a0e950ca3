/* The module's helper methods: prepare_attention_mask (attention_processor.py:Attention.prepare_attention_mask), head_to_batch_dim /
 * batch_to_head_dim, get_attention_scores, norm_encoder_hidden_states. */
#include "capi_test.h"

static int shape_is(const DLManagedTensor *m, int ndim, const int64_t *shape) {
    if (!m || m->dl_tensor.ndim != ndim) return 0;
    for (int i = 0; i < ndim; i++)
        if (m->dl_tensor.shape[i] != shape[i]) return 0;
    return 1;
}

static void fmt_shape(const DLManagedTensor *m, char *buf, size_t n) {
    size_t used = 0;
    buf[0] = 0;
    if (!m) {
        snprintf(buf, n, "NULL");
        return;
    }
    for (int i = 0; i < m->dl_tensor.ndim && used < n; i++)
        used += (size_t)snprintf(buf + used, n - used, "%s%lld", i ? "," : "(", (long long)m->dl_tensor.shape[i]);
    if (used < n) snprintf(buf + used, n - used, ")");
}

static void test_prepare_mask(void) {
    da_attention_config c;
    da_attention_config_init(&c, sizeof c);
    c.query_dim = 32;
    c.heads = 4;
    c.dim_head = 8;
    da_attention a = NULL;
    EXPECT_ST(da_attention_create(&c, &a), DA_OK);
    static const struct {
        int nd;
        int64_t in[3];
        int64_t out3[3];
        int64_t out4[4];
        int nd4;
    } rows[] = {
        {2, {2, 7}, {8, 7}, {2, 4, 7}, 3},
        {3, {2, 1, 7}, {8, 1, 7}, {2, 4, 1, 7}, 4},
        {3, {2, 5, 7}, {8, 5, 7}, {2, 4, 5, 7}, 4},
        {3, {1, 1, 7}, {4, 1, 7}, {1, 4, 1, 7}, 4},
        {3, {2, 1, 4}, {8, 1, 11}, {2, 4, 1, 11}, 4},
    };
    float data[2 * 5 * 7];
    for (int i = 0; i < 70; i++) data[i] = (float)(i + 1);
    uint8_t bdata[70];
    for (int i = 0; i < 70; i++) bdata[i] = 1;
    char sbuf[64];
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
        tensor_t t;
        DLManagedTensor *m = NULL;
        EXPECT_ST(da_attention_prepare_attention_mask(a, tens(&t, data, rows[r].nd, rows[r].in, NULL), 7, 2, 3, &m), DA_OK);
        fmt_shape(m, sbuf, sizeof sbuf);
        CHECK(shape_is(m, rows[r].nd, rows[r].out3), "attention_processor.py:Attention.prepare_attention_mask row %zu out_dim=3: got %s", r, sbuf);
        if (m && r == 4 && shape_is(m, 3, rows[r].out3)) {
            /* (2,1,4) → (8,1,11): row k is input row k/4, then 7 zeros */
            const float *v = (const float *)m->dl_tensor.data;
            int ok = m->dl_tensor.dtype.code == kDLFloat && m->dl_tensor.dtype.bits == 32;
            for (int k = 0; k < 8; k++)
                for (int j = 0; j < 11; j++) ok &= v[k * 11 + j] == (j < 4 ? data[(k / 4) * 4 + j] : 0.0f);
            CHECK(ok, "padding by target_length with zeros and repeat_interleave over heads");
        }
        da_tensor_free(m);
        m = NULL;
        EXPECT_ST(da_attention_prepare_attention_mask(a, tens(&t, data, rows[r].nd, rows[r].in, NULL), 7, 2, 4, &m), DA_OK);
        fmt_shape(m, sbuf, sizeof sbuf);
        CHECK(shape_is(m, rows[r].nd4, rows[r].out4), "attention_processor.py:Attention.prepare_attention_mask row %zu out_dim=4: got %s", r, sbuf);
        da_tensor_free(m);
        /* a boolean mask keeps its dtype; padding is False */
        m = NULL;
        EXPECT_ST(da_attention_prepare_attention_mask(a, tens_bool(&t, bdata, rows[r].nd, rows[r].in, NULL, kDLUInt), 7,
                                                      2, 3, &m),
                  DA_OK);
        CHECK(shape_is(m, rows[r].nd, rows[r].out3) && m->dl_tensor.dtype.bits == 8 &&
                  (m->dl_tensor.dtype.code == kDLUInt || m->dl_tensor.dtype.code == 6),
              "bool mask row %zu keeps an 8-bit bool dtype", r);
        if (m && r == 4 && shape_is(m, 3, rows[r].out3)) {
            const uint8_t *v = (const uint8_t *)m->dl_tensor.data;
            int ok = 1;
            for (int k = 0; k < 8; k++)
                for (int j = 0; j < 11; j++) ok &= (v[k * 11 + j] != 0) == (j < 4);
            CHECK(ok, "bool padding is False");
        }
        da_tensor_free(m);
    }
    /* other out_dim: only the padding step */
    tensor_t t;
    DLManagedTensor *m = NULL;
    EXPECT_ST(da_attention_prepare_attention_mask(a, tens(&t, data, 3, (int64_t[]){2, 1, 4}, NULL), 7, 2, 5, &m), DA_OK);
    CHECK(shape_is(m, 3, (int64_t[]){2, 1, 11}), "out_dim=5 pads only");
    da_tensor_free(m);
    /* float64 mask → DTYPE */
    tens(&t, data, 2, (int64_t[]){1, 7}, NULL);
    t.t.dtype.bits = 64;
    m = (DLManagedTensor *)(void *)&t; /* must be overwritten with NULL on failure */
    EXPECT_ST(da_attention_prepare_attention_mask(a, &t.t, 7, 2, 3, &m), DA_ERR_DTYPE);
    CHECK(m == NULL, "out set to NULL on failure");
    EXPECT_ST(da_attention_prepare_attention_mask(a, tens(&t, data, 2, (int64_t[]){1, 7}, NULL), -1, 2, 3, &m),
              DA_ERR_INVALID_ARGUMENT);
    da_attention_destroy(a);
}

static void test_head_batch(void) {
    da_attention_config c;
    da_attention_config_init(&c, sizeof c);
    c.query_dim = 32;
    c.heads = 4;
    c.dim_head = 8;
    da_attention a = NULL;
    EXPECT_ST(da_attention_create(&c, &a), DA_OK);
    enum { B = 2, N = 5, W = 32, H = 4, D = 8 };
    float x[B * N * W];
    fill_det(x, B * N * W, 77, 1.0f);
    tensor_t t;
    int64_t s3[3] = {B, N, W};
    DLManagedTensor *hb = NULL, *hb4 = NULL, *back = NULL;
    EXPECT_ST(da_attention_head_to_batch_dim(a, tens(&t, x, 3, s3, NULL), 3, &hb), DA_OK);
    CHECK(shape_is(hb, 3, (int64_t[]){B * H, N, D}), "head_to_batch_dim → (B·H, N, W/H)");
    if (shape_is(hb, 3, (int64_t[]){B * H, N, D})) {
        const float *v = (const float *)hb->dl_tensor.data;
        int ok = 1;
        for (int b = 0; b < B; b++)
            for (int h = 0; h < H; h++)
                for (int n = 0; n < N; n++)
                    for (int d = 0; d < D; d++) ok &= v[((b * H + h) * N + n) * D + d] == x[(b * N + n) * W + h * D + d];
        CHECK(ok, "head_to_batch_dim values: row b·H + h");
        EXPECT_ST(da_attention_batch_to_head_dim(a, &hb->dl_tensor, &back), DA_OK);
        CHECK(shape_is(back, 3, s3) && memcmp(back->dl_tensor.data, x, sizeof x) == 0,
              "batch_to_head_dim(head_to_batch_dim(x)) == x");
    }
    EXPECT_ST(da_attention_head_to_batch_dim(a, tens(&t, x, 3, s3, NULL), 4, &hb4), DA_OK);
    CHECK(shape_is(hb4, 4, (int64_t[]){B, H, N, D}), "head_to_batch_dim out_dim=4 → (B, H, N, W/H)");
    if (hb && shape_is(hb4, 4, (int64_t[]){B, H, N, D}))
        CHECK(memcmp(hb4->dl_tensor.data, hb->dl_tensor.data, sizeof x) == 0, "out_dim 4 same memory order as 3");
    da_tensor_free(hb), da_tensor_free(hb4), da_tensor_free(back);
    /* W not divisible by heads */
    DLManagedTensor *m = NULL;
    EXPECT_ST(da_attention_head_to_batch_dim(a, tens(&t, x, 3, (int64_t[]){B, N, 30}, NULL), 3, &m), DA_ERR_SHAPE);
    /* batch_to_head_dim with a first axis not divisible by heads */
    EXPECT_ST(da_attention_batch_to_head_dim(a, tens(&t, x, 3, (int64_t[]){3, N, D}, NULL), &m), DA_ERR_SHAPE);
    da_attention_destroy(a);
}

static void test_scores(void) {
    da_attention_config c;
    da_attention_config_init(&c, sizeof c);
    c.query_dim = 16;
    c.heads = 2;
    c.dim_head = 8;
    da_attention a = NULL;
    EXPECT_ST(da_attention_create(&c, &a), DA_OK);
    enum { N = 3, LQ = 4, LK = 6, D = 8 };
    float q[N * LQ * D], k[N * LK * D], mask[LK];
    fill_det(q, N * LQ * D, 4, 2.0f);
    fill_det(k, N * LK * D, 5, 2.0f);
    for (int j = 0; j < LK; j++) mask[j] = j == 2 ? -1e4f : 0.0f;
    tensor_t tq, tk, tm;
    DLManagedTensor *p = NULL;
    EXPECT_ST(da_attention_get_attention_scores(a, tens(&tq, q, 3, (int64_t[]){N, LQ, D}, NULL),
                                                tens(&tk, k, 3, (int64_t[]){N, LK, D}, NULL), NULL, &p),
              DA_OK);
    CHECK(shape_is(p, 3, (int64_t[]){N, LQ, LK}), "scores shape (N, Lq, Lk)");
    if (shape_is(p, 3, (int64_t[]){N, LQ, LK})) {
        const float *v = (const float *)p->dl_tensor.data;
        double worst_sum = 0, worst_ref = 0;
        for (int n = 0; n < N; n++)
            for (int i = 0; i < LQ; i++) {
                double s = 0, ref[LK], m = -INFINITY, z = 0;
                for (int j = 0; j < LK; j++) {
                    double dot = 0;
                    for (int d = 0; d < D; d++) dot += (double)q[(n * LQ + i) * D + d] * k[(n * LK + j) * D + d];
                    ref[j] = dot / sqrt(8.0);
                    if (ref[j] > m) m = ref[j];
                }
                for (int j = 0; j < LK; j++) z += (ref[j] = exp(ref[j] - m));
                for (int j = 0; j < LK; j++) {
                    s += v[(n * LQ + i) * LK + j];
                    double e = fabs(v[(n * LQ + i) * LK + j] - ref[j] / z);
                    if (e > worst_ref) worst_ref = e;
                }
                if (fabs(s - 1) > worst_sum) worst_sum = fabs(s - 1);
            }
        CHECK(worst_sum < 1e-5, "score rows sum to 1: worst %g", worst_sum);
        CHECK(worst_ref < 1e-6, "scores vs reference softmax(scale·QKᵀ): %g", worst_ref);
    }
    da_tensor_free(p);
    p = NULL;
    /* a (Lk,) float mask broadcasts; masked column gets ~0 */
    EXPECT_ST(da_attention_get_attention_scores(a, tens(&tq, q, 3, (int64_t[]){N, LQ, D}, NULL),
                                                tens(&tk, k, 3, (int64_t[]){N, LK, D}, NULL),
                                                tens(&tm, mask, 1, (int64_t[]){LK}, NULL), &p),
              DA_OK);
    if (shape_is(p, 3, (int64_t[]){N, LQ, LK})) {
        const float *v = (const float *)p->dl_tensor.data;
        int ok = 1;
        for (int r = 0; r < N * LQ; r++) ok &= v[r * LK + 2] < 1e-6f;
        CHECK(ok, "masked column has probability ~0");
    } else {
        CHECK(0, "scores with mask: shape");
    }
    da_tensor_free(p);
    /* boolean mask → DTYPE (as diffusers' baddbmm) */
    uint8_t bm[LK] = {1, 1, 0, 1, 1, 1};
    EXPECT_ST(da_attention_get_attention_scores(a, tens(&tq, q, 3, (int64_t[]){N, LQ, D}, NULL),
                                                tens(&tk, k, 3, (int64_t[]){N, LK, D}, NULL),
                                                tens_bool(&tm, bm, 1, (int64_t[]){LK}, NULL, kDLUInt), &p),
              DA_ERR_DTYPE);
    /* mismatched d */
    EXPECT_ST(da_attention_get_attention_scores(a, tens(&tq, q, 3, (int64_t[]){N, LQ, D}, NULL),
                                                tens(&tk, k, 3, (int64_t[]){N, LK * 2, D / 2}, NULL), NULL, &p),
              DA_ERR_SHAPE);
    da_attention_destroy(a);
}

static void test_norm_cross(void) {
    da_attention_config c;
    da_attention_config_init(&c, sizeof c);
    c.query_dim = 16;
    c.heads = 2;
    c.dim_head = 8;
    da_attention a = NULL;
    EXPECT_ST(da_attention_create(&c, &a), DA_OK);
    enum { B = 2, S = 5, CE = 16 };
    float e[B * S * CE];
    fill_det(e, B * S * CE, 8, 3.0f);
    for (int i = 0; i < B * S * CE; i++) e[i] += 1.5f;
    tensor_t te;
    int64_t es[3] = {B, S, CE};
    DLManagedTensor *m = NULL;
    EXPECT_ERR(da_attention_norm_encoder_hidden_states(a, tens(&te, e, 3, es, NULL), &m), DA_ERR_STATE, "norm_cross");
    da_attention_destroy(a);

    c.cross_attention_norm = DA_CROSS_ATTENTION_NORM_LAYER_NORM;
    EXPECT_ST(da_attention_create(&c, &a), DA_OK);
    EXPECT_ST(da_attention_norm_encoder_hidden_states(a, tens(&te, e, 3, es, NULL), &m), DA_OK);
    if (shape_is(m, 3, es)) {
        const float *v = (const float *)m->dl_tensor.data;
        double worst = 0;
        for (int r = 0; r < B * S; r++) {
            double mean = 0, var = 0;
            for (int j = 0; j < CE; j++) mean += v[r * CE + j];
            mean /= CE;
            for (int j = 0; j < CE; j++) var += (v[r * CE + j] - mean) * (v[r * CE + j] - mean);
            var /= CE;
            if (fabs(mean) > worst) worst = fabs(mean);
            if (fabs(var - 1) > worst) worst = fabs(var - 1);
        }
        CHECK(worst < 1e-3, "layer-norm norm_cross rows have mean 0 var 1: %g", worst);
    } else {
        CHECK(0, "norm_encoder_hidden_states shape");
    }
    da_tensor_free(m);
    m = NULL;
    EXPECT_ST(da_attention_norm_encoder_hidden_states(a, tens(&te, e, 3, (int64_t[]){B, S, CE - 1}, NULL), &m),
              DA_ERR_SHAPE);
    da_attention_destroy(a);

    c.cross_attention_norm = DA_CROSS_ATTENTION_NORM_GROUP_NORM;
    c.cross_attention_norm_num_groups = 4;
    EXPECT_ST(da_attention_create(&c, &a), DA_OK);
    EXPECT_ST(da_attention_norm_encoder_hidden_states(a, tens(&te, e, 3, es, NULL), &m), DA_OK);
    if (shape_is(m, 3, es)) {
        const float *v = (const float *)m->dl_tensor.data;
        double worst = 0;
        for (int b = 0; b < B; b++)
            for (int g = 0; g < 4; g++) {
                double mean = 0, var = 0;
                for (int s = 0; s < S; s++)
                    for (int j = g * 4; j < g * 4 + 4; j++) mean += v[(b * S + s) * CE + j];
                mean /= S * 4;
                for (int s = 0; s < S; s++)
                    for (int j = g * 4; j < g * 4 + 4; j++)
                        var += (v[(b * S + s) * CE + j] - mean) * (v[(b * S + s) * CE + j] - mean);
                var /= S * 4;
                if (fabs(mean) > worst) worst = fabs(mean);
                if (fabs(var - 1) > worst) worst = fabs(var - 1);
            }
        CHECK(worst < 1e-3, "group-norm norm_cross: per (sample, group) over channels×tokens mean 0 var 1: %g", worst);
    } else {
        CHECK(0, "group norm_cross shape");
    }
    da_tensor_free(m);
    da_attention_destroy(a);
}

void test_helpers(void) {
    test_prepare_mask();
    test_head_batch();
    test_scores();
    test_norm_cross();
}
