/* da_sdpa_with_lse and da_merge_attention_partials against a double-precision reference:
 * log-sum-exp of masked rows (bool and additive -inf), a fully masked row (lse -inf, output 0),
 * strided lse, and merging two key blocks equal to attention over the union. */
#include "capi_test.h"

/* lse[b,h,i] and out[b,h,i,:] over keys [k0, k1) of contiguous (B,H,N,D) tensors, mask (B,Nk) bool. */
static void ref_block(int64_t B, int64_t H, int64_t Nq, int64_t Nk, int64_t D, const float *q, const float *k,
                      const float *v, const uint8_t *mask, int64_t k0, int64_t k1, double *out, double *lse) {
    double scale = 1.0 / sqrt((double)D);
    double *s = malloc(sizeof(double) * (size_t)Nk);
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t i = 0; i < Nq; i++) {
                const float *qi = q + ((b * H + h) * Nq + i) * D;
                double m = -INFINITY, z = 0;
                for (int64_t j = k0; j < k1; j++) {
                    const float *kj = k + ((b * H + h) * Nk + j) * D;
                    double dot = 0;
                    for (int64_t d = 0; d < D; d++) dot += (double)qi[d] * kj[d];
                    s[j] = mask[b * Nk + j] ? dot * scale : -INFINITY;
                    if (s[j] > m) m = s[j];
                }
                double *o = out + ((b * H + h) * Nq + i) * D;
                for (int64_t d = 0; d < D; d++) o[d] = 0;
                if (m == -INFINITY) { lse[(b * H + h) * Nq + i] = -INFINITY; continue; }
                for (int64_t j = k0; j < k1; j++) {
                    double p = exp(s[j] - m);
                    z += p;
                    for (int64_t d = 0; d < D; d++) o[d] += p * v[((b * H + h) * Nk + j) * D + d];
                }
                for (int64_t d = 0; d < D; d++) o[d] /= z;
                lse[(b * H + h) * Nq + i] = m + log(z);
            }
    free(s);
}

void test_lse(void) {
    enum { B = 2, H = 3, NQ = 70, NK = 150, D = 16, SPLIT = 97 };
    float *q = alloc_floats(B * H * NQ * D), *k = alloc_floats(B * H * NK * D), *v = alloc_floats(B * H * NK * D);
    fill_det(q, B * H * NQ * D, 1, 1.0f);
    fill_det(k, B * H * NK * D, 2, 1.0f);
    fill_det(v, B * H * NK * D, 3, 1.0f);
    uint8_t mask[B * NK];
    float additive[B * NK];
    for (int i = 0; i < B * NK; i++) mask[i] = (uint8_t)((i * 7) % 5 != 0);
    for (int j = 0; j < SPLIT; j++) mask[NK + j] = 0; /* batch 1: the first block is fully masked */
    for (int i = 0; i < B * NK; i++) additive[i] = mask[i] ? 0.0f : -INFINITY;
    double *ro = malloc(sizeof(double) * B * H * NQ * D), *rl = malloc(sizeof(double) * B * H * NQ);
    ref_block(B, H, NQ, NK, D, q, k, v, mask, 0, NK, ro, rl);

    tensor_t tq, tk, tv, tm, to, tl, tpo, tpl;
    int64_t sq[4] = {B, H, NQ, D}, sk[4] = {B, H, NK, D}, sm[4] = {B, 1, 1, NK}, sl[3] = {B, H, NQ};
    float *out = alloc_floats(B * H * NQ * D);
    /* lse with strides (B, H, NQ) placed in a padded buffer: element [b,h,i] at b*H*2*NQ + h*2*NQ + 2*i */
    float *lsebuf = alloc_floats(B * H * NQ * 2);
    int64_t lstr[3] = {H * NQ * 2, NQ * 2, 2};
    for (int pass = 0; pass < 2; pass++) {
        DLTensor *m = pass == 0 ? tens_bool(&tm, mask, 4, sm, NULL, 6) : tens(&tm, additive, 4, sm, NULL);
        EXPECT_ST(da_sdpa_with_lse(tens(&tq, q, 4, sq, NULL), tens(&tk, k, 4, sk, NULL), tens(&tv, v, 4, sk, NULL), m,
                                   NULL, tens(&to, out, 4, sq, NULL), tens(&tl, lsebuf, 3, sl, lstr)), DA_OK);
        double dl = 0, dout = 0;
        int inf_ok = 1;
        for (int64_t r = 0; r < B * H * NQ; r++) {
            float got = lsebuf[r * 2];
            if (isinf(rl[r])) inf_ok &= isinf(got) && got < 0;
            else if (fabs(got - rl[r]) > dl) dl = fabs(got - rl[r]);
        }
        for (int64_t i = 0; i < B * H * NQ * D; i++) if (fabs(out[i] - ro[i]) > dout) dout = fabs(out[i] - ro[i]);
        CHECK(dl < 1e-5 && inf_ok, "%s mask: lse max |diff| %g vs double reference", pass ? "additive" : "bool", dl);
        CHECK(dout < 1e-5, "%s mask: output max |diff| %g", pass ? "additive" : "bool", dout);
    }

    /* Two key blocks merged == all keys; batch 1's first block is fully masked (lse -inf). */
    int64_t sk1[4] = {B, H, SPLIT, D}, sk2[4] = {B, H, NK - SPLIT, D}, sm1[4] = {B, 1, 1, SPLIT}, sm2[4] = {B, 1, 1, NK - SPLIT};
    int64_t kst[4] = {H * NK * D, NK * D, D, 1}, mst[4] = {NK, 0, 0, 1};
    float *o1 = alloc_floats(B * H * NQ * D), *o2 = alloc_floats(B * H * NQ * D);
    float *l1 = alloc_floats(B * H * NQ), *l2 = alloc_floats(B * H * NQ);
    tensor_t a, bb, c;
    EXPECT_ST(da_sdpa_with_lse(tens(&tq, q, 4, sq, NULL), tens(&tk, k, 4, sk1, kst), tens(&tv, v, 4, sk1, kst),
                               tens_bool(&tm, mask, 4, sm1, mst, 6), NULL, tens(&to, o1, 4, sq, NULL),
                               tens(&tl, l1, 3, sl, NULL)), DA_OK);
    EXPECT_ST(da_sdpa_with_lse(tens(&tq, q, 4, sq, NULL), tens(&a, k + SPLIT * D, 4, sk2, kst),
                               tens(&bb, v + SPLIT * D, 4, sk2, kst), tens_bool(&c, mask + SPLIT, 4, sm2, mst, 6), NULL,
                               tens(&to, o2, 4, sq, NULL), tens(&tpl, l2, 3, sl, NULL)), DA_OK);
    int first_inf = isinf(l1[H * NQ]) && l1[H * NQ] < 0 && o1[H * NQ * D] == 0;
    CHECK(first_inf, "a fully masked block gives lse -inf and output 0 (got %g, %g)", l1[H * NQ], o1[H * NQ * D]);
    EXPECT_ST(da_merge_attention_partials(tens(&to, o1, 4, sq, NULL), tens(&tl, l1, 3, sl, NULL),
                                          tens(&tpo, o2, 4, sq, NULL), tens(&tpl, l2, 3, sl, NULL)), DA_OK);
    double dm = 0, dml = 0;
    for (int64_t i = 0; i < B * H * NQ * D; i++) if (fabs(o1[i] - ro[i]) > dm) dm = fabs(o1[i] - ro[i]);
    for (int64_t r = 0; r < B * H * NQ; r++) if (!isinf(rl[r]) && fabs(l1[r] - rl[r]) > dml) dml = fabs(l1[r] - rl[r]);
    CHECK(dm < 1e-5 && dml < 1e-5, "merge of two blocks: output max |diff| %g, lse %g", dm, dml);

    /* Both sides -inf stays zero with lse -inf (no NaN). */
    float zo[D] = {0}, zp[D], zl = -INFINITY, zpl = -INFINITY;
    for (int d = 0; d < D; d++) zp[d] = 1.0f;
    int64_t s1[3] = {1, 1, D}, s1l[2] = {1, 1};
    EXPECT_ST(da_merge_attention_partials(tens(&to, zo, 3, s1, NULL), tens(&tl, &zl, 2, s1l, NULL),
                                          tens(&tpo, zp, 3, s1, NULL), tens(&tpl, &zpl, 2, s1l, NULL)), DA_OK);
    CHECK(zo[0] == 0 && isinf(zl) && zl < 0, "-inf merged with -inf: out %g lse %g", zo[0], zl);

    /* Errors name the argument. */
    int64_t bad[3] = {B, H, NQ + 1};
    EXPECT_ERR(da_sdpa_with_lse(tens(&tq, q, 4, sq, NULL), tens(&tk, k, 4, sk, NULL), tens(&tv, v, 4, sk, NULL), NULL,
                                NULL, tens(&to, out, 4, sq, NULL), tens(&tl, lsebuf, 3, bad, NULL)), DA_ERR_SHAPE, "lse");
    EXPECT_ERR(da_sdpa_with_lse(tens(&tq, q, 4, sq, NULL), tens(&tk, k, 4, sk, NULL), tens(&tv, v, 4, sk, NULL), NULL,
                                NULL, tens(&to, out, 4, sq, NULL), NULL), DA_ERR_INVALID_ARGUMENT, "lse");
    EXPECT_ERR(da_merge_attention_partials(tens(&to, o1, 4, sq, NULL), tens(&tl, l1, 3, sl, NULL),
                                           tens(&tpo, o2, 4, sk, NULL), tens(&tpl, l2, 3, sl, NULL)), DA_ERR_SHAPE, "partial_out");
    EXPECT_ERR(da_merge_attention_partials(NULL, tens(&tl, l1, 3, sl, NULL), tens(&tpo, o2, 4, sq, NULL),
                                           tens(&tpl, l2, 3, sl, NULL)), DA_ERR_INVALID_ARGUMENT, "out");
    free(q); free(k); free(v); free(ro); free(rl); free(out); free(lsebuf); free(o1); free(o2); free(l1); free(l2);
}
