/* Numerical edge cases against torch 2.15 / diffusers 0.42.1 behaviour (docs/robustness.md):
 * fully masked rows, NaN/Inf in query, key, value and mask, huge and overflowing logits.
 *
 * SDPA: the result must equal torch's MATH backend, which a double-precision reference written
 * the way torch's math path works reproduces exactly in its NaN pattern: NaN propagates through
 * max and sum; a row whose every score is -inf (fully masked) gives zeros (torch ≥ 2.5's safe
 * softmax); +inf scores give NaN (inf - inf). Both DA_SDPA_MATH and DA_SDPA_FLASH are checked.
 * Attention.forward: a fully masked row gives NaN with AttnProcessor (softmax of all -inf) and
 * zeros before to_out with AttnProcessor2_0 (so the output is to_out.0.bias), as in diffusers.
 *
 * Prints "numerics: N passed, M failed"; exits non-zero on failure. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diffattn.h"

static int passed, failed;
#define CHECK(cond, ...)                                                   \
    do {                                                                   \
        if (cond) passed++;                                                \
        else { failed++; printf("FAIL %s:%d: ", __FILE__, __LINE__); printf(__VA_ARGS__); printf("\n"); } \
    } while (0)

enum { NQ = 3, NK = 5, D = 4 };

static DLTensor t4(float *p, int64_t *shape) {
    DLTensor t;
    memset(&t, 0, sizeof t);
    t.data = p;
    t.device.device_type = kDLCPU;
    t.ndim = 4;
    t.dtype.code = kDLFloat, t.dtype.bits = 32, t.dtype.lanes = 1;
    t.shape = shape;
    return t;
}

/* torch's math path in double: s = scale·q·kᵀ + mask; m = max (NaN-propagating); a row with
 * m = -inf gives zeros; else softmax(s - m)·v. */
static void reference(const float *q, const float *k, const float *v, const float *mask, const uint8_t *bmask,
                      double *out) {
    double scale = 1 / sqrt((double)D);
    for (int i = 0; i < NQ; i++) {
        double s[NK], m = -INFINITY;
        for (int j = 0; j < NK; j++) {
            double acc = 0;
            for (int c = 0; c < D; c++) acc += (double)q[i * D + c] * k[j * D + c];
            /* torch computes q·kᵀ in float32 before scaling; a product beyond FLT_MAX is inf */
            float accf = (float)acc;
            acc = (double)accf * scale;
            if (mask) acc += mask[i * NK + j];
            if (bmask && !bmask[i * NK + j]) acc = -INFINITY;
            s[j] = acc;
            if (isnan(acc) || isnan(m)) m = NAN;
            else if (acc > m) m = acc;
        }
        for (int c = 0; c < D; c++) {
            if (m == -INFINITY) { out[i * D + c] = 0; continue; }
            double num = 0, den = 0;
            for (int j = 0; j < NK; j++) {
                double e = exp(s[j] - m);
                den += e;
                num += e * v[j * D + c];
            }
            out[i * D + c] = num / den;
        }
    }
}

static float base_q[NQ * D], base_k[NK * D], base_v[NK * D];

static void run_case(const char *name, const float *q, const float *k, const float *v, const float *mask,
                     const uint8_t *bmask) {
    double ref[NQ * D];
    reference(q, k, v, mask, bmask, ref);
    int64_t qs[4] = {1, 1, NQ, D}, ks[4] = {1, 1, NK, D}, ms[4] = {1, 1, NQ, NK};
    for (int alg = DA_SDPA_MATH; alg <= DA_SDPA_FLASH; alg++) {
        float out[NQ * D];
        DLTensor tq = t4((float *)q, qs), tk = t4((float *)k, ks), tv = t4((float *)v, ks), to = t4(out, qs);
        DLTensor tm = t4((float *)(mask ? (const void *)mask : (const void *)bmask), ms);
        if (bmask) tm.dtype.code = kDLUInt, tm.dtype.bits = 8;
        da_sdpa_options o;
        da_sdpa_options_init(&o, sizeof o);
        o.algorithm = alg;
        da_status st = da_scaled_dot_product_attention(&tq, &tk, &tv, mask || bmask ? &tm : NULL, &o, &to);
        CHECK(st == DA_OK, "%s (%s): %s %s", name, alg == DA_SDPA_MATH ? "MATH" : "FLASH", da_status_name(st), da_last_error());
        if (st != DA_OK) continue;
        int bad = -1;
        for (int i = 0; i < NQ * D && bad < 0; i++) {
            double r = ref[i], g = out[i];
            int ok = isnan(r) ? isnan(g) : isinf(r) ? g == r : (!isnan(g) && fabs(g - r) <= 1e-4 * (1 + fabs(r)));
            if (!ok) bad = i;
        }
        CHECK(bad < 0, "%s (%s): element %d is %g, torch MATH gives %g", name, alg == DA_SDPA_MATH ? "MATH" : "FLASH",
              bad, bad >= 0 ? out[bad] : 0.0, bad >= 0 ? ref[bad] : 0.0);
    }
}

static void test_sdpa(void) {
    for (int i = 0; i < NQ * D; i++) base_q[i] = sinf(0.7f * i + 0.3f);
    for (int i = 0; i < NK * D; i++) base_k[i] = cosf(0.45f * i - 0.2f), base_v[i] = sinf(1.3f * i) * 2;
    float q[NQ * D], k[NK * D], v[NK * D], mask[NQ * NK];
    uint8_t bmask[NQ * NK];
#define RESET() memcpy(q, base_q, sizeof q), memcpy(k, base_k, sizeof k), memcpy(v, base_v, sizeof v), memset(mask, 0, sizeof mask)
    RESET();
    run_case("plain", q, k, v, NULL, NULL);
    /* fully masked rows: zeros */
    for (int j = 0; j < NK; j++) mask[1 * NK + j] = -INFINITY;
    run_case("float mask, row 1 all -inf", q, k, v, mask, NULL);
    memset(bmask, 1, sizeof bmask);
    for (int j = 0; j < NK; j++) bmask[1 * NK + j] = 0;
    run_case("bool mask, row 1 all False", q, k, v, NULL, bmask);
    memset(bmask, 0, sizeof bmask);
    run_case("bool mask, all False", q, k, v, NULL, bmask);
    RESET();
    /* finite huge negative mask: not masked, the largest logit wins (softmax of finite values) */
    for (int i = 0; i < NQ * NK; i++) mask[i] = -1e30f;
    run_case("mask all -1e30 (finite)", q, k, v, mask, NULL);
    for (int i = 0; i < NQ; i++) mask[i * NK] = 0;
    run_case("mask -1e30 except key 0", q, k, v, mask, NULL);
    RESET();
    mask[1] = INFINITY;
    run_case("mask +inf at one key (NaN rows)", q, k, v, mask, NULL);
    RESET();
    mask[1] = NAN;
    run_case("mask NaN at (0, 1)", q, k, v, mask, NULL);
    /* NaN / Inf in the operands */
    RESET();
    q[0] = NAN;
    run_case("NaN in query row 0", q, k, v, NULL, NULL);
    RESET();
    k[2 * D + 1] = NAN;
    run_case("NaN in key 2", q, k, v, NULL, NULL);
    RESET();
    v[2 * D + 1] = NAN;
    run_case("NaN in value 2, channel 1", q, k, v, NULL, NULL);
    RESET();
    v[2 * D + 1] = INFINITY;
    run_case("+inf in value 2, channel 1", q, k, v, NULL, NULL);
    RESET();
    q[0] = INFINITY;
    run_case("+inf in query row 0", q, k, v, NULL, NULL);
    /* huge logits */
    RESET();
    for (int i = 0; i < NQ * D; i++) q[i] *= 1e30f;
    run_case("query × 1e30 (finite logits ~1e30)", q, k, v, NULL, NULL);
    RESET();
    for (int i = 0; i < NQ * D; i++) q[i] *= 1e20f;
    for (int i = 0; i < NK * D; i++) k[i] *= 1e20f;
    run_case("query, key × 1e20 (logits overflow to inf)", q, k, v, NULL, NULL);
#undef RESET
}

/* Attention.forward with batch 0's keys all masked (additive -inf), batch 1 unmasked. */
static void test_forward_fully_masked(void) {
    enum { B = 2, L = 3, C = 8 };
    float x[B * L * C], out[B * L * C], mask[B * L], bias[C];
    for (int i = 0; i < B * L * C; i++) x[i] = sinf(0.37f * i);
    for (int i = 0; i < B * L; i++) mask[i] = i < L ? -INFINITY : 0;
    int32_t kinds[2] = {DA_PROCESSOR_ATTN_PROCESSOR, DA_PROCESSOR_ATTN_PROCESSOR_2_0};
    for (int p = 0; p < 2; p++) {
        da_attention_config c;
        da_attention_config_init(&c, sizeof c);
        c.query_dim = C, c.heads = 2, c.dim_head = 4, c.processor = kinds[p];
        da_attention a = NULL;
        da_status st = da_attention_create(&c, &a);
        CHECK(st == DA_OK, "create: %s", da_last_error());
        if (st != DA_OK) continue;
        int64_t xs[3] = {B, L, C}, ms[3] = {B, 1, L}, bs[1] = {C};
        DLTensor tx, to, tm, tb;
        memset(&tx, 0, sizeof tx);
        tx.device.device_type = kDLCPU, tx.dtype.code = kDLFloat, tx.dtype.bits = 32, tx.dtype.lanes = 1;
        to = tm = tb = tx;
        tx.data = x, tx.ndim = 3, tx.shape = xs;
        to.data = out, to.ndim = 3, to.shape = xs;
        tm.data = mask, tm.ndim = 3, tm.shape = ms;
        tb.data = bias, tb.ndim = 1, tb.shape = bs;
        da_forward_args args;
        da_forward_args_init(&args, sizeof args);
        args.hidden_states = &tx;
        args.attention_mask = &tm;
        st = da_attention_forward(a, &args, &to, 1);
        CHECK(st == DA_OK, "forward: %s", da_last_error());
        st = da_attention_get_weight(a, "to_out.0.bias", &tb);
        CHECK(st == DA_OK, "get to_out.0.bias: %s", da_last_error());
        int b0_nan = 1, b0_bias = 1, b1_finite = 1;
        for (int i = 0; i < L * C; i++) {
            b0_nan &= isnan(out[i]);
            b0_bias &= out[i] == bias[i % C];
            b1_finite &= isfinite(out[L * C + i]);
        }
        if (p == 0) CHECK(b0_nan, "AttnProcessor: a fully masked batch gives NaN (diffusers: softmax of all -inf)");
        else CHECK(b0_bias, "AttnProcessor2_0: a fully masked batch gives to_out.0.bias (torch SDPA zeros)");
        CHECK(b1_finite, "%s: the unmasked batch stays finite", p ? "AttnProcessor2_0" : "AttnProcessor");
        /* NaN in one token of batch 0, no mask: batch 0 all NaN, batch 1 finite (diffusers, both families) */
        float saved = x[1 * C + 0];
        x[1 * C + 0] = NAN;
        args.attention_mask = NULL;
        st = da_attention_forward(a, &args, &to, 1);
        CHECK(st == DA_OK, "forward with NaN: %s", da_last_error());
        b0_nan = 1, b1_finite = 1;
        for (int i = 0; i < L * C; i++) b0_nan &= isnan(out[i]), b1_finite &= isfinite(out[L * C + i]);
        CHECK(b0_nan && b1_finite, "%s: NaN in one token makes its batch NaN, the other batch finite",
              p ? "AttnProcessor2_0" : "AttnProcessor");
        x[1 * C + 0] = saved;
        da_attention_destroy(a);
    }
}

int main(void) {
    da_set_num_threads(2);
    test_sdpa();
    test_forward_fully_masked();
    printf("numerics: %d passed, %d failed\n", passed, failed);
    return failed != 0;
}
