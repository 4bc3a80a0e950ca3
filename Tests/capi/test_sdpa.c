/* da_scaled_dot_product_attention against a naive double-precision reference: strides, masks
 * (float and bool, broadcast), causal with Nq != Nk, GQA, explicit scale, rank 3, MATH vs FLASH,
 * and the documented errors. */
#include "capi_test.h"

typedef struct {
    const void *p;
    int64_t s[4]; /* element strides (b, h, i, j/d); 0 broadcasts */
    int is_bool;
} view4;

/* out[b,h,i,:] = softmax(scale·q·kᵀ + mask)·v in double; fully masked rows → 0. */
static void sdpa_ref(int64_t B, int64_t H, int64_t Hkv, int64_t Nq, int64_t Nk, int64_t D, int64_t Dv, view4 q,
                     view4 k, view4 v, const view4 *mask, int causal, double scale, double *out) {
    double *p = malloc(sizeof(double) * (size_t)Nk);
    int64_t group = H / Hkv;
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++) {
            int64_t hk = h / group;
            for (int64_t i = 0; i < Nq; i++) {
                double m = -INFINITY;
                for (int64_t j = 0; j < Nk; j++) {
                    double s = 0;
                    for (int64_t d = 0; d < D; d++)
                        s += (double)((const float *)q.p)[b * q.s[0] + h * q.s[1] + i * q.s[2] + d * q.s[3]] *
                             (double)((const float *)k.p)[b * k.s[0] + hk * k.s[1] + j * k.s[2] + d * k.s[3]];
                    s *= scale;
                    if (causal && j > i) s = -INFINITY;
                    if (mask) {
                        int64_t off = b * mask->s[0] + h * mask->s[1] + i * mask->s[2] + j * mask->s[3];
                        if (mask->is_bool) {
                            if (!((const uint8_t *)mask->p)[off]) s = -INFINITY;
                        } else {
                            s += ((const float *)mask->p)[off];
                        }
                    }
                    p[j] = s;
                    if (s > m) m = s;
                }
                double z = 0;
                if (m == -INFINITY) {
                    for (int64_t j = 0; j < Nk; j++) p[j] = 0;
                } else {
                    for (int64_t j = 0; j < Nk; j++) z += (p[j] = exp(p[j] - m));
                    for (int64_t j = 0; j < Nk; j++) p[j] /= z;
                }
                for (int64_t d = 0; d < Dv; d++) {
                    double s = 0;
                    for (int64_t j = 0; j < Nk; j++)
                        s += p[j] * (double)((const float *)v.p)[b * v.s[0] + hk * v.s[1] + j * v.s[2] + d * v.s[3]];
                    out[((b * H + h) * Nq + i) * Dv + d] = s;
                }
            }
        }
    free(p);
}

static void compact4(const int64_t *shape, int64_t *st) {
    st[3] = 1;
    for (int i = 2; i >= 0; i--) st[i] = st[i + 1] * shape[i + 1];
}

/* Compares a strided float out (B,H,Nq,Dv) with the double reference. */
static double compare_out(const float *o, const int64_t *os, const double *ref, int64_t B, int64_t H, int64_t Nq, int64_t Dv) {
    double worst = 0, peak = 0;
    for (int64_t i = 0; i < B * H * Nq * Dv; i++)
        if (fabs(ref[i]) > peak) peak = fabs(ref[i]);
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t i = 0; i < Nq; i++)
                for (int64_t d = 0; d < Dv; d++) {
                    double got = o[b * os[0] + h * os[1] + i * os[2] + d * os[3]];
                    double want = ref[((b * H + h) * Nq + i) * Dv + d];
                    double e = fabs(got - want) / (peak > 0 ? peak : 1);
                    if (!(e <= worst)) worst = e;
                }
    return worst;
}

typedef struct {
    const char *name;
    int64_t B, H, Hkv, Nq, Nk, D, Dv;
    int strided;   /* inputs stored (B, N, H, D) and read as (B, H, N, D); out padded */
    int mask_kind; /* 0 none, 1 float (1,1,Nq,Nk), 2 bool (B,1,1,Nk), 3 float (Nk) , 4 bool with a fully masked row */
    int causal, gqa, has_scale;
    double scale;
    int32_t algorithm;
} sdpa_case;

static void run_case(const sdpa_case *c) {
    int64_t B = c->B, H = c->H, Hkv = c->Hkv, Nq = c->Nq, Nk = c->Nk, D = c->D, Dv = c->Dv;
    float *q = alloc_floats((size_t)(B * H * Nq * D)), *k = alloc_floats((size_t)(B * Hkv * Nk * D));
    float *v = alloc_floats((size_t)(B * Hkv * Nk * Dv));
    int64_t pad = c->strided ? 3 : 0;
    float *o = alloc_floats((size_t)(B * H * Nq * (Dv + pad)));
    double *ref = calloc((size_t)(B * H * Nq * Dv), sizeof(double));
    fill_det(q, (size_t)(B * H * Nq * D), 101 + (uint32_t)Nq, 1.5f);
    fill_det(k, (size_t)(B * Hkv * Nk * D), 202 + (uint32_t)Nk, 1.5f);
    fill_det(v, (size_t)(B * Hkv * Nk * Dv), 303, 1.0f);
    for (int64_t i = 0; i < B * H * Nq * (Dv + pad); i++) o[i] = 99.0f;
    int64_t qs[4] = {B, H, Nq, D}, ks[4] = {B, Hkv, Nk, D}, vs[4] = {B, Hkv, Nk, Dv}, os4[4] = {B, H, Nq, Dv};
    int64_t qst[4], kst[4], vst[4], ost[4];
    if (c->strided) { /* memory (B, N, H, D) */
        int64_t qm[4] = {Nq * H * D, D, H * D, 1}, km[4] = {Nk * Hkv * D, D, Hkv * D, 1};
        int64_t vm[4] = {Nk * Hkv * Dv, Dv, Hkv * Dv, 1}, om[4] = {H * Nq * (Dv + pad), Nq * (Dv + pad), Dv + pad, 1};
        memcpy(qst, qm, sizeof qm), memcpy(kst, km, sizeof km), memcpy(vst, vm, sizeof vm), memcpy(ost, om, sizeof om);
    } else {
        compact4(qs, qst), compact4(ks, kst), compact4(vs, vst), compact4(os4, ost);
    }
    tensor_t tq, tk, tv, to, tm;
    DLTensor *mask = NULL;
    view4 mview;
    float *fm = NULL;
    uint8_t *bm = NULL;
    if (c->mask_kind == 1) {
        fm = alloc_floats((size_t)(Nq * Nk));
        fill_det(fm, (size_t)(Nq * Nk), 404, 2.0f);
        mask = tens(&tm, fm, 4, (int64_t[]){1, 1, Nq, Nk}, NULL);
        mview = (view4){fm, {0, 0, Nk, 1}, 0};
    } else if (c->mask_kind == 2 || c->mask_kind == 4) {
        bm = malloc((size_t)(B * Nk));
        for (int64_t i = 0; i < B * Nk; i++) bm[i] = (uint8_t)((i * 7) % 5 != 0);
        bm[0] = 1;
        mask = tens_bool(&tm, bm, 4, (int64_t[]){B, 1, 1, Nk}, NULL, kDLUInt);
        mview = (view4){bm, {Nk, 0, 0, 1}, 1};
        if (c->mask_kind == 4) { /* (B, 1, Nq, Nk) with query row 1 of batch 0 fully masked */
            free(bm);
            bm = malloc((size_t)(B * Nq * Nk));
            for (int64_t i = 0; i < B * Nq * Nk; i++) bm[i] = (uint8_t)(i % 3 != 0);
            for (int64_t j = 0; j < Nk; j++) bm[1 * Nk + j] = 0;
            mask = tens_bool(&tm, bm, 4, (int64_t[]){B, 1, Nq, Nk}, NULL, 6);
            mview = (view4){bm, {Nq * Nk, 0, Nk, 1}, 1};
        }
    } else if (c->mask_kind == 3) {
        fm = alloc_floats((size_t)Nk);
        for (int64_t j = 0; j < Nk; j++) fm[j] = j % 4 == 3 ? -1e9f : 0.25f * (float)j;
        mask = tens(&tm, fm, 1, (int64_t[]){Nk}, NULL);
        mview = (view4){fm, {0, 0, 0, 1}, 0};
    }
    da_sdpa_options opt;
    da_sdpa_options_init(&opt, sizeof opt);
    opt.is_causal = c->causal;
    opt.enable_gqa = c->gqa;
    opt.has_scale = c->has_scale;
    opt.scale = c->scale;
    opt.algorithm = c->algorithm;
    da_status st = da_scaled_dot_product_attention(tens(&tq, q, 4, qs, qst), tens(&tk, k, 4, ks, kst),
                                                   tens(&tv, v, 4, vs, vst), mask, &opt, tens(&to, o, 4, os4, ost));
    CHECK(st == DA_OK, "sdpa %s: %s %s", c->name, da_status_name(st), da_last_error());
    if (st == DA_OK) {
        double scale = c->has_scale ? c->scale : 1.0 / sqrt((double)D);
        view4 vq = {q, {qst[0], qst[1], qst[2], qst[3]}, 0}, vk = {k, {kst[0], kst[1], kst[2], kst[3]}, 0};
        view4 vv = {v, {vst[0], vst[1], vst[2], vst[3]}, 0};
        sdpa_ref(B, H, Hkv, Nq, Nk, D, Dv, vq, vk, vv, mask ? &mview : NULL, c->causal, scale, ref);
        double e = compare_out(o, ost, ref, B, H, Nq, Dv);
        CHECK(e < 2e-5, "sdpa %s vs double reference: max err / peak = %g", c->name, e);
        if (pad) {
            int ok = 1;
            for (int64_t r = 0; r < B * H * Nq; r++)
                for (int64_t d = Dv; d < Dv + pad; d++) ok &= o[r * (Dv + pad) + d] == 99.0f;
            CHECK(ok, "sdpa %s: padding of a strided out untouched", c->name);
        }
        if (c->mask_kind == 4) {
            int zero = 1;
            for (int64_t h = 0; h < H; h++)
                for (int64_t d = 0; d < Dv; d++) zero &= o[0 * ost[0] + h * ost[1] + 1 * ost[2] + d * ost[3]] == 0.0f;
            CHECK(zero, "sdpa %s: fully masked query row gives zeros", c->name);
        }
    }
    free(q), free(k), free(v), free(o), free(ref), free(fm), free(bm);
}

static void test_sdpa_cases(void) {
    static const sdpa_case cases[] = {
        {"basic (2,3,5,8)x(7) Dv=6", 2, 3, 3, 5, 7, 8, 6, 0, 0, 0, 0, 0, 0, DA_SDPA_AUTO},
        {"strided (B,N,H,D) views", 2, 4, 4, 9, 13, 16, 16, 1, 0, 0, 0, 0, 0, DA_SDPA_AUTO},
        {"strided MATH", 2, 4, 4, 9, 13, 16, 16, 1, 0, 0, 0, 0, 0, DA_SDPA_MATH},
        {"float mask (1,1,Nq,Nk)", 2, 2, 2, 6, 11, 8, 8, 0, 1, 0, 0, 0, 0, DA_SDPA_AUTO},
        {"float mask (1,1,Nq,Nk) MATH", 2, 2, 2, 6, 11, 8, 8, 0, 1, 0, 0, 0, 0, DA_SDPA_MATH},
        {"bool mask (B,1,1,Nk)", 2, 3, 3, 7, 10, 8, 4, 1, 2, 0, 0, 0, 0, DA_SDPA_FLASH},
        {"bool mask (B,1,1,Nk) MATH", 2, 3, 3, 7, 10, 8, 4, 1, 2, 0, 0, 0, 0, DA_SDPA_MATH},
        {"float mask (Nk,) rank 1", 1, 2, 2, 5, 12, 8, 8, 0, 3, 0, 0, 0, 0, DA_SDPA_AUTO},
        {"bool mask fully masked row", 2, 2, 2, 4, 6, 8, 8, 0, 4, 0, 0, 0, 0, DA_SDPA_FLASH},
        {"bool mask fully masked row MATH", 2, 2, 2, 4, 6, 8, 8, 0, 4, 0, 0, 0, 0, DA_SDPA_MATH},
        {"causal Nq<Nk", 1, 2, 2, 5, 9, 8, 8, 0, 0, 1, 0, 0, 0, DA_SDPA_AUTO},
        {"causal Nq>Nk", 1, 2, 2, 9, 5, 8, 8, 0, 0, 1, 0, 0, 0, DA_SDPA_FLASH},
        {"causal Nq>Nk MATH", 1, 2, 2, 9, 5, 8, 8, 0, 0, 1, 0, 0, 0, DA_SDPA_MATH},
        {"causal long strided", 1, 2, 2, 70, 150, 32, 32, 1, 0, 1, 0, 0, 0, DA_SDPA_FLASH},
        {"gqa H=6 Hkv=2", 2, 6, 2, 5, 8, 8, 8, 0, 0, 0, 1, 0, 0, DA_SDPA_AUTO},
        {"gqa H=6 Hkv=3 strided MATH", 1, 6, 3, 5, 8, 8, 8, 1, 0, 0, 1, 0, 0, DA_SDPA_MATH},
        {"explicit scale 0.3", 1, 2, 2, 4, 6, 16, 16, 0, 0, 0, 0, 1, 0.3, DA_SDPA_AUTO},
        {"explicit scale 0.3 MATH", 1, 2, 2, 4, 6, 16, 16, 0, 0, 0, 0, 1, 0.3, DA_SDPA_MATH},
        {"larger (1,2,130,200,64)", 1, 2, 2, 130, 200, 64, 64, 0, 1, 0, 0, 0, 0, DA_SDPA_FLASH},
        {"head_dim 40, 1 token", 1, 1, 1, 1, 1, 40, 40, 0, 0, 0, 0, 0, 0, DA_SDPA_AUTO},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_case(&cases[i]);
}

static void test_math_vs_flash_and_rank3(void) {
    enum { B = 2, H = 4, N = 257, D = 64 };
    size_t n = (size_t)B * H * N * D;
    float *q = alloc_floats(n), *k = alloc_floats(n), *v = alloc_floats(n), *o1 = alloc_floats(n), *o2 = alloc_floats(n);
    fill_det(q, n, 1, 1.0f), fill_det(k, n, 2, 1.0f), fill_det(v, n, 3, 1.0f);
    int64_t s[4] = {B, H, N, D};
    tensor_t tq, tk, tv, to;
    da_sdpa_options opt;
    da_sdpa_options_init(&opt, sizeof opt);
    opt.algorithm = DA_SDPA_MATH;
    EXPECT_ST(da_scaled_dot_product_attention(tens(&tq, q, 4, s, NULL), tens(&tk, k, 4, s, NULL), tens(&tv, v, 4, s, NULL),
                                              NULL, &opt, tens(&to, o1, 4, s, NULL)),
              DA_OK);
    opt.algorithm = DA_SDPA_FLASH;
    EXPECT_ST(da_scaled_dot_product_attention(tens(&tq, q, 4, s, NULL), tens(&tk, k, 4, s, NULL), tens(&tv, v, 4, s, NULL),
                                              NULL, &opt, tens(&to, o2, 4, s, NULL)),
              DA_OK);
    double r = max_rel_diff(o2, o1, n);
    CHECK(r < 1e-4, "DA_SDPA_MATH vs DA_SDPA_FLASH: rel %g", r);
    /* options NULL = defaults (AUTO, the flash kernel) */
    memset(o1, 0, n * sizeof(float));
    EXPECT_ST(da_scaled_dot_product_attention(tens(&tq, q, 4, s, NULL), tens(&tk, k, 4, s, NULL), tens(&tv, v, 4, s, NULL),
                                              NULL, NULL, tens(&to, o1, 4, s, NULL)),
              DA_OK);
    r = max_rel_diff(o1, o2, n);
    CHECK(r < 1e-5, "options NULL vs FLASH: rel %g", r);
    /* rank 3 (H, N, D) = batch 1: equals the first batch of the rank-4 result */
    int64_t s3[3] = {H, N, D};
    memset(o1, 0, n * sizeof(float));
    EXPECT_ST(da_scaled_dot_product_attention(tens(&tq, q, 3, s3, NULL), tens(&tk, k, 3, s3, NULL),
                                              tens(&tv, v, 3, s3, NULL), NULL, &opt, tens(&to, o1, 3, s3, NULL)),
              DA_OK);
    r = max_rel_diff(o1, o2, (size_t)H * N * D);
    CHECK(r < 1e-6, "rank-3 tensors are batch 1: rel %g", r);
    /* zero-size problem: nothing to do, OK */
    int64_t z[4] = {B, H, 0, D};
    EXPECT_ST(da_scaled_dot_product_attention(tens(&tq, q, 4, z, NULL), tens(&tk, k, 4, s, NULL), tens(&tv, v, 4, s, NULL),
                                              NULL, NULL, tens(&to, o1, 4, z, NULL)),
              DA_OK);
    free(q), free(k), free(v), free(o1), free(o2);
}

static void test_sdpa_errors(void) {
    enum { B = 1, H = 4, N = 6, D = 8 };
    float q[B * H * N * D], k[B * H * N * D], v[B * H * N * D], o[B * H * N * D], m[N * N];
    fill_det(q, sizeof q / 4, 1, 1), fill_det(k, sizeof k / 4, 2, 1), fill_det(v, sizeof v / 4, 3, 1);
    memset(m, 0, sizeof m);
    int64_t s[4] = {B, H, N, D};
    tensor_t tq, tk, tv, to, tm;
    da_sdpa_options opt;
    da_sdpa_options_init(&opt, sizeof opt);
#define SDPA(qd, kd, vd, md, od) da_scaled_dot_product_attention((qd), (kd), (vd), (md), &opt, (od))
#define Q tens(&tq, q, 4, s, NULL)
#define K tens(&tk, k, 4, s, NULL)
#define V tens(&tv, v, 4, s, NULL)
#define O tens(&to, o, 4, s, NULL)
    EXPECT_ST(SDPA(Q, K, V, NULL, O), DA_OK);
    opt.dropout_p = 0.1;
    EXPECT_ERR(SDPA(Q, K, V, NULL, O), DA_ERR_INVALID_ARGUMENT, "dropout_p");
    opt.dropout_p = 0;
    opt.is_causal = 1;
    EXPECT_ERR(SDPA(Q, K, V, tens(&tm, m, 2, (int64_t[]){N, N}, NULL), O), DA_ERR_INVALID_ARGUMENT, "is_causal");
    opt.is_causal = 0;
    opt.algorithm = 3;
    EXPECT_ERR(SDPA(Q, K, V, NULL, O), DA_ERR_INVALID_ARGUMENT, "algorithm");
    opt.algorithm = -1;
    EXPECT_ST(SDPA(Q, K, V, NULL, O), DA_ERR_INVALID_ARGUMENT);
    opt.algorithm = DA_SDPA_AUTO;
    /* mismatched head_dim */
    EXPECT_ERR(SDPA(Q, tens(&tk, k, 4, (int64_t[]){B, H, N * 2, D / 2}, NULL), V, NULL, O), DA_ERR_SHAPE, "head_dim");
    /* value length differs from key length */
    EXPECT_ST(SDPA(Q, K, tens(&tv, v, 4, (int64_t[]){B, H, N / 2, D * 2}, NULL), NULL, O), DA_ERR_SHAPE);
    /* H not a multiple of Hkv, with and without gqa; Hkv != H without gqa */
    int64_t s3h[4] = {B, 3, N, D}, s2h[4] = {B, 2, N, D};
    EXPECT_ST(SDPA(Q, tens(&tk, k, 4, s3h, NULL), tens(&tv, v, 4, s3h, NULL), NULL, O), DA_ERR_SHAPE);
    opt.enable_gqa = 1;
    EXPECT_ST(SDPA(Q, tens(&tk, k, 4, s3h, NULL), tens(&tv, v, 4, s3h, NULL), NULL, O), DA_ERR_SHAPE);
    opt.enable_gqa = 0;
    EXPECT_ERR(SDPA(Q, tens(&tk, k, 4, s2h, NULL), tens(&tv, v, 4, s2h, NULL), NULL, O), DA_ERR_SHAPE, "enable_gqa");
    /* mask not broadcastable */
    EXPECT_ST(SDPA(Q, K, V, tens(&tm, m, 2, (int64_t[]){N, N - 1}, NULL), O), DA_ERR_SHAPE);
    EXPECT_ST(SDPA(Q, K, V, tens(&tm, m, 3, (int64_t[]){3, N, 2}, NULL), O), DA_ERR_SHAPE);
    /* out of the wrong shape; nothing written */
    for (int i = 0; i < B * H * N * D; i++) o[i] = 5.0f;
    EXPECT_ERR(SDPA(Q, K, V, NULL, tens(&to, o, 4, (int64_t[]){B, H, N, D - 1}, NULL)), DA_ERR_SHAPE, "out");
    int untouched = 1;
    for (int i = 0; i < B * H * N * D; i++) untouched &= o[i] == 5.0f;
    CHECK(untouched, "nothing written to out on failure");
    /* rank 2 / rank 5 */
    EXPECT_ST(SDPA(tens(&tq, q, 2, (int64_t[]){H * N, D}, NULL), K, V, NULL, O), DA_ERR_SHAPE);
    EXPECT_ST(SDPA(tens(&tq, q, 5, (int64_t[]){1, B, H, N, D}, NULL), K, V, NULL, O), DA_ERR_SHAPE);
    /* float64 query / key / out, float16, int32, vector lanes → DTYPE */
    tens(&tq, q, 2, (int64_t[]){1, 1}, NULL); /* placeholder, replaced below */
    DLTensor *qd = tens(&tq, q, 4, (int64_t[]){B, H, N, D / 2}, NULL);
    qd->dtype.bits = 64;
    EXPECT_ERR(SDPA(qd, K, V, NULL, O), DA_ERR_DTYPE, "query");
    DLTensor *kd = tens(&tk, k, 4, s, NULL);
    kd->dtype.bits = 16;
    EXPECT_ERR(SDPA(Q, kd, V, NULL, O), DA_ERR_DTYPE, "key");
    DLTensor *vd = tens(&tv, v, 4, s, NULL);
    vd->dtype.code = kDLInt;
    EXPECT_ERR(SDPA(Q, K, vd, NULL, O), DA_ERR_DTYPE, "value");
    DLTensor *od = tens(&to, o, 4, s, NULL);
    od->dtype.lanes = 2;
    EXPECT_ERR(SDPA(Q, K, V, NULL, od), DA_ERR_DTYPE, "out");
    DLTensor *md = tens(&tm, m, 2, (int64_t[]){N, N}, NULL);
    md->dtype.bits = 64;
    EXPECT_ERR(SDPA(Q, K, V, md, O), DA_ERR_DTYPE, "attn_mask");
    /* CUDA device → DTYPE */
    DLTensor *qc = tens(&tq, q, 4, s, NULL);
    qc->device.device_type = kDLCUDA;
    EXPECT_ERR(SDPA(qc, K, V, NULL, O), DA_ERR_DTYPE, "query");
    DLTensor *oc = tens(&to, o, 4, s, NULL);
    oc->device.device_type = kDLCUDA;
    EXPECT_ST(SDPA(Q, K, V, NULL, oc), DA_ERR_DTYPE);
    /* options with a bad struct_size */
    da_sdpa_options small = opt;
    small.struct_size = 4;
    EXPECT_ERR(da_scaled_dot_product_attention(Q, K, V, NULL, &small, O), DA_ERR_INVALID_ARGUMENT, "struct_size");
    /* NaN / inf scale */
    opt.has_scale = 1;
    opt.scale = INFINITY;
    da_status st = SDPA(Q, K, V, NULL, O);
    CHECK(st == DA_ERR_INVALID_ARGUMENT || st == DA_OK, "infinite scale: %s", da_status_name(st));
    opt.has_scale = 0;
#undef SDPA
#undef Q
#undef K
#undef V
#undef O
}

static uint16_t to_bf16(float x) { /* round to nearest even (finite inputs) */
    uint32_t b;
    memcpy(&b, &x, 4);
    return (uint16_t)((b + 0x7FFFu + ((b >> 16) & 1u)) >> 16);
}

static float from_bf16(uint16_t h) {
    uint32_t b = (uint32_t)h << 16;
    float x;
    memcpy(&x, &b, 4);
    return x;
}

static DLTensor *tens_bf16(tensor_t *x, uint16_t *data, int ndim, const int64_t *shape) {
    DLTensor *t = tens(x, data, ndim, shape, NULL);
    t->dtype.code = kDLBfloat, t->dtype.bits = 16;
    return t;
}

/* bf16 query/key/value (out bf16 or float32) against the double reference on the rounded inputs:
 * the float32 tolerance, plus 2^-8 of the peak for a bf16 out (8 significant bits: unit roundoff 2^-8). DA_PRECISION_INT8
 * by the paper's metric (cosine similarity ≥ 0.999). A struct from before `precision`; errors. */
static void test_sdpa_bf16_and_int8(void) {
    enum { B = 1, H = 2, N = 70, S = 77, D = 40 };
    static float q[B * H * N * D], k[B * H * S * D], v[B * H * S * D], o[B * H * N * D];
    static uint16_t hq[B * H * N * D], hk[B * H * S * D], hv[B * H * S * D], ho[B * H * N * D];
    static double ref[B * H * N * D];
    fill_det(q, sizeof q / 4, 11, 1.5f), fill_det(k, sizeof k / 4, 12, 1.5f), fill_det(v, sizeof v / 4, 13, 1.0f);
    for (size_t i = 0; i < sizeof q / 4; i++) q[i] = from_bf16(hq[i] = to_bf16(q[i]));
    for (size_t i = 0; i < sizeof k / 4; i++) k[i] = from_bf16(hk[i] = to_bf16(k[i]));
    for (size_t i = 0; i < sizeof v / 4; i++) v[i] = from_bf16(hv[i] = to_bf16(v[i]));
    int64_t qs[4] = {B, H, N, D}, ks[4] = {B, H, S, D}, qst[4], kst[4];
    compact4(qs, qst), compact4(ks, kst);
    view4 vq = {q, {qst[0], qst[1], qst[2], qst[3]}, 0}, vk = {k, {kst[0], kst[1], kst[2], kst[3]}, 0};
    view4 vv = {v, {kst[0], kst[1], kst[2], kst[3]}, 0};
    sdpa_ref(B, H, H, N, S, D, D, vq, vk, vv, NULL, 0, 1.0 / sqrt((double)D), ref);
    tensor_t tq, tk, tv, to;
    da_sdpa_options opt;
    da_sdpa_options_init(&opt, sizeof opt);
    CHECK(opt.precision == DA_PRECISION_DEFAULT, "sdpa options: precision defaults to DA_PRECISION_DEFAULT");
    for (int32_t algorithm = DA_SDPA_MATH; algorithm <= DA_SDPA_FLASH; algorithm++) {
        opt.algorithm = algorithm;
        da_status st = da_scaled_dot_product_attention(tens_bf16(&tq, hq, 4, qs), tens_bf16(&tk, hk, 4, ks),
                                                       tens_bf16(&tv, hv, 4, ks), NULL, &opt, tens(&to, o, 4, qs, NULL));
        CHECK(st == DA_OK, "sdpa bf16 in, float32 out: %s", da_last_error());
        double e = compare_out(o, qst, ref, B, H, N, D);
        CHECK(e < 2e-5, "sdpa bf16 in, float32 out (algorithm %d): max err / peak = %g", algorithm, e);
        st = da_scaled_dot_product_attention(tens_bf16(&tq, hq, 4, qs), tens_bf16(&tk, hk, 4, ks),
                                             tens_bf16(&tv, hv, 4, ks), NULL, &opt, tens_bf16(&to, ho, 4, qs));
        CHECK(st == DA_OK, "sdpa bf16 in, bf16 out: %s", da_last_error());
        for (size_t i = 0; i < sizeof o / 4; i++) o[i] = from_bf16(ho[i]);
        e = compare_out(o, qst, ref, B, H, N, D);
        CHECK(e < 2e-5 + 1.0 / 256, "sdpa bf16 in and out (algorithm %d): max err / peak = %g", algorithm, e);
    }
    opt.algorithm = DA_SDPA_AUTO;
    opt.precision = DA_PRECISION_INT8;
    da_status st = da_scaled_dot_product_attention(tens(&tq, q, 4, qs, NULL), tens(&tk, k, 4, ks, NULL),
                                                   tens(&tv, v, 4, ks, NULL), NULL, &opt, tens(&to, o, 4, qs, NULL));
    if (st == DA_ERR_UNSUPPORTED) {
        CHECK(strstr(da_last_error(), "AVX2") != NULL, "int8 refused with a message naming AVX2: %s", da_last_error());
    } else {
        CHECK(st == DA_OK, "sdpa int8: %s", da_last_error());
        double dot = 0, gg = 0, ww = 0;
        for (size_t i = 0; i < sizeof o / 4; i++) dot += o[i] * ref[i], gg += (double)o[i] * o[i], ww += ref[i] * ref[i];
        CHECK(dot / sqrt(gg * ww) > 0.999, "sdpa int8 cosine similarity %g", dot / sqrt(gg * ww));
    }
    /* A caller built before `precision` existed passes a shorter struct: accepted, precision default. */
    da_sdpa_options old;
    da_sdpa_options_init(&old, sizeof old);
    old.precision = 12345; /* beyond the old struct: must not be read */
    old.struct_size = (uint32_t)offsetof(da_sdpa_options, precision);
    EXPECT_ST(da_scaled_dot_product_attention(tens(&tq, q, 4, qs, NULL), tens(&tk, k, 4, ks, NULL),
                                              tens(&tv, v, 4, ks, NULL), NULL, &old, tens(&to, o, 4, qs, NULL)), DA_OK);
    opt.precision = 7;
    EXPECT_ERR(da_scaled_dot_product_attention(tens(&tq, q, 4, qs, NULL), tens(&tk, k, 4, ks, NULL),
                                               tens(&tv, v, 4, ks, NULL), NULL, &opt, tens(&to, o, 4, qs, NULL)),
               DA_ERR_INVALID_ARGUMENT, "precision");
    /* int8 copies K/V per batch element: a key broadcast over a huge batch is refused, not allocated. */
    if (st == DA_OK) {
        opt.precision = DA_PRECISION_INT8;
        int64_t big[4] = {(int64_t)1 << 22, H, N, D}, bigst[4] = {0, qst[1], qst[2], qst[3]};
        int64_t kb[4] = {1, H, S, D};
        EXPECT_ERR(da_scaled_dot_product_attention(tens(&tq, q, 4, big, bigst), tens(&tk, k, 4, kb, NULL),
                                                   tens(&tv, v, 4, kb, NULL), NULL, &opt, tens(&to, o, 4, big, bigst)),
                   DA_ERR_OUT_OF_MEMORY, "quantised key/value");
    }
    opt.precision = DA_PRECISION_DEFAULT;
    EXPECT_ERR(da_scaled_dot_product_attention(tens_bf16(&tq, hq, 4, qs), tens(&tk, k, 4, ks, NULL),
                                               tens_bf16(&tv, hv, 4, ks), NULL, &opt, tens(&to, o, 4, qs, NULL)),
               DA_ERR_DTYPE, "share one dtype");
}

void test_sdpa(void) {
    test_sdpa_cases();
    test_math_vs_flash_and_rank3();
    test_sdpa_errors();
    test_sdpa_bf16_and_int8();
}
