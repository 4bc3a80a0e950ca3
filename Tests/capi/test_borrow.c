/* da_attention_borrow_weight: the library reads the caller's memory in place (a write to it is
 * seen by the next forward), float32 and bfloat16, and refuses what it cannot read in place. */
#include "capi_test.h"

#define QD 16
#define TOKENS 5

static int forward(da_attention a, const float *x, float *out) {
    tensor_t tx, to;
    const int64_t shape[3] = {1, TOKENS, QD};
    da_forward_args args;
    da_forward_args_init(&args, sizeof args);
    args.hidden_states = tens(&tx, (void *)x, 3, shape, NULL);
    return da_attention_forward(a, &args, tens(&to, out, 3, shape, NULL), 1) == DA_OK;
}

static uint16_t to_bf16(float f) { /* round to nearest even; the values here are finite */
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return (uint16_t)((u + 0x7FFF + ((u >> 16) & 1)) >> 16);
}

static float from_bf16(uint16_t b) {
    uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

void test_borrow(void) {
    da_attention_config c;
    da_attention_config_init(&c, sizeof c);
    c.query_dim = QD;
    c.heads = 2;
    c.dim_head = 8;
    da_attention a = make_attention(&c, 11);
    if (a == NULL) return;
    float x[TOKENS * QD], own[TOKENS * QD], lent[TOKENS * QD], again[TOKENS * QD];
    fill_det(x, TOKENS * QD, 3, 1.0f);
    const int64_t wshape[2] = {QD, QD};
    float *w = alloc_floats(QD * QD), *copy = alloc_floats(QD * QD);
    tensor_t tw;
    EXPECT_ST(da_attention_get_weight(a, "to_q.weight", tens(&tw, w, 2, wshape, NULL)), DA_OK);
    CHECK(forward(a, x, own), "forward with own weights: %s", da_last_error());

    /* borrowed fp32, same values → the same bits */
    EXPECT_ST(da_attention_borrow_weight(a, "to_q.weight", tens(&tw, w, 2, wshape, NULL)), DA_OK);
    CHECK(forward(a, x, lent) && memcmp(own, lent, sizeof own) == 0, "borrowed fp32 weight changes the output");
    /* a write to the caller's memory is what the next forward reads */
    for (int i = 0; i < QD * QD; i++) w[i] *= 0.5f;
    CHECK(forward(a, x, lent), "forward after a write: %s", da_last_error());
    memcpy(copy, w, sizeof(float) * QD * QD);
    EXPECT_ST(da_attention_set_weight(a, "to_q.weight", tens(&tw, copy, 2, wshape, NULL)), DA_OK);
    CHECK(forward(a, x, again) && memcmp(again, lent, sizeof again) == 0 && memcmp(again, own, sizeof own) != 0,
          "the write to borrowed memory was not seen, or the forward ignores to_q");
    /* get_weight copies the borrowed values out */
    EXPECT_ST(da_attention_borrow_weight(a, "to_q.weight", tens(&tw, w, 2, wshape, NULL)), DA_OK);
    float *back = alloc_floats(QD * QD);
    EXPECT_ST(da_attention_get_weight(a, "to_q.weight", tens(&tw, back, 2, wshape, NULL)), DA_OK);
    CHECK(memcmp(back, w, sizeof(float) * QD * QD) == 0, "get_weight of a borrowed entry differs");

    /* bfloat16: the same as copying the widened values */
    uint16_t *wb = (uint16_t *)malloc(sizeof(uint16_t) * QD * QD);
    for (int i = 0; i < QD * QD; i++) {
        wb[i] = to_bf16(w[i]);
        copy[i] = from_bf16(wb[i]);
    }
    tensor_t tb;
    tens(&tb, wb, 2, wshape, NULL);
    tb.t.dtype.code = 4; /* kDLBfloat */
    tb.t.dtype.bits = 16;
    EXPECT_ST(da_attention_borrow_weight(a, "to_q.weight", &tb.t), DA_OK);
    CHECK(forward(a, x, lent), "forward with a bf16 borrow: %s", da_last_error());
    EXPECT_ST(da_attention_set_weight(a, "to_q.weight", tens(&tw, copy, 2, wshape, NULL)), DA_OK);
    CHECK(forward(a, x, again) && max_abs_diff(lent, again, TOKENS * QD) < 1e-5,
          "bf16 borrow vs widened copy: %g", max_abs_diff(lent, again, TOKENS * QD));

    /* refusals */
    const int64_t tstrides[2] = {1, QD};
    EXPECT_ERR(da_attention_borrow_weight(a, "to_q.weight", tens(&tw, w, 2, wshape, tstrides)), DA_ERR_SHAPE,
               "contiguous");
    const int64_t bad[2] = {QD, QD - 1};
    EXPECT_ERR(da_attention_borrow_weight(a, "to_q.weight", tens(&tw, w, 2, bad, NULL)), DA_ERR_SHAPE, "shape");
    EXPECT_ERR(da_attention_borrow_weight(a, "to_x.weight", tens(&tw, w, 2, wshape, NULL)), DA_ERR_NOT_FOUND,
               "to_x.weight");
    EXPECT_ERR(da_attention_borrow_weight(a, "to_q.weight", NULL), DA_ERR_INVALID_ARGUMENT, "value");
    EXPECT_ERR(da_attention_borrow_weight(NULL, "to_q.weight", tens(&tw, w, 2, wshape, NULL)), DA_ERR_INVALID_HANDLE,
               NULL);
    tens(&tw, w, 2, wshape, NULL);
    tw.t.dtype.bits = 64;
    EXPECT_ERR(da_attention_borrow_weight(a, "to_q.weight", &tw.t), DA_ERR_DTYPE, "float32 or bfloat16");
    tens(&tw, (char *)w + 1, 2, wshape, NULL);
    EXPECT_ERR(da_attention_borrow_weight(a, "to_q.weight", &tw.t), DA_ERR_INVALID_ARGUMENT, "aligned");
    da_attention_destroy(a);
    free(w);
    free(copy);
    free(back);
    free(wb);
}
