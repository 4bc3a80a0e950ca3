/* Shared helpers of the C API tests: a tiny counting assertion layer and DLTensor builders.
 * No test framework; every check increments capi_passed or capi_failed. */
#ifndef CAPI_TEST_H
#define CAPI_TEST_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diffattn.h"

extern int capi_passed, capi_failed;

void capi_record(int ok, const char *file, int line, const char *what, const char *detail);

/* CHECK(condition, printf-style detail...) — one counted check. */
#define CHECK(cond, ...)                                                                  \
    do {                                                                                  \
        char capi_detail_[512];                                                           \
        snprintf(capi_detail_, sizeof capi_detail_, __VA_ARGS__);                         \
        capi_record((cond) ? 1 : 0, __FILE__, __LINE__, #cond, capi_detail_);             \
    } while (0)

/* EXPECT_ST(call, status): the call returns `status`; if that is an error, da_last_error() is
 * non-empty. EXPECT_ERR(call, status, substring): additionally the message contains `substring`.
 * Both count as one check. */
int capi_expect_status(da_status got, da_status want, const char *substr, const char *expr,
                       const char *file, int line);
#define EXPECT_ST(expr, want) capi_expect_status((expr), (want), NULL, #expr, __FILE__, __LINE__)
#define EXPECT_ERR(expr, want, substr) capi_expect_status((expr), (want), (substr), #expr, __FILE__, __LINE__)

/* A DLTensor over caller memory. shape/strides arrays are copied into the struct. */
typedef struct {
    DLTensor t;
    int64_t shape[DA_MAX_NDIM];
    int64_t strides[DA_MAX_NDIM];
} tensor_t;

/* Sets up `x` as a float32 CPU tensor over `data` with `ndim` sizes (variadic int64), compact. */
void tensor_init(tensor_t *x, void *data, int ndim, const int64_t *shape, const int64_t *strides);
DLTensor *tens(tensor_t *x, void *data, int ndim, const int64_t *shape, const int64_t *strides);
/* As tens() but with an 8-bit boolean dtype (code: kDLUInt (1) or kDLBool (6)). */
DLTensor *tens_bool(tensor_t *x, uint8_t *data, int ndim, const int64_t *shape, const int64_t *strides, int code);

int64_t numel(int ndim, const int64_t *shape);
float *alloc_floats(size_t n);            /* zeroed, aborts the test run on OOM */
void fill_det(float *p, size_t n, uint32_t seed, float amplitude); /* deterministic values */
double max_rel_diff(const float *a, const float *b, size_t n);     /* max |a-b| / max |b| */
double max_abs_diff(const float *a, const float *b, size_t n);
/* Runs fn(arg) in a forked child so that a crash is counted instead of ending the run. Returns
 * the child's da_status and copies its da_last_error() into msg; ISOLATED_CRASHED - signal if the
 * child died (e.g. SIGABRT from a Swift runtime trap). */
#define ISOLATED_NOT_RUN (-1)
#define ISOLATED_CRASHED (-1000)
int run_isolated(da_status (*fn)(void *), void *arg, char *msg, size_t msgsize);
int msg_contains(const char *needle);     /* da_last_error() contains needle */
int msg_nonempty(void);

/* Creates a module from `cfg`, with every weight filled deterministically from `seed`.
 * Returns NULL (and records a failure) on error. */
da_attention make_attention(const da_attention_config *cfg, uint32_t seed);
/* Fills all weights of `a` deterministically. */
int fill_weights(da_attention a, uint32_t seed);

/* Test groups (one per file). */
void test_basics(void);
void test_forward(void);
void test_helpers(void);
void test_sdpa(void);
void test_misuse(void);
void test_threads(void);
void test_dit(void);
void test_dit_ip(void);
da_attention flux_module(int64_t added, uint32_t seed); /* test_dit.c */
void test_caches(void);
void test_casting(void);
void test_processor_query(void);
void test_model_defaults(void);
void test_hook_scripts(void);
void test_hooks_newer(void);
void test_borrow(void);
void test_lse(void);
void test_parallel(void);
void test_offload_threads(void);
void test_pretrained(void);
void test_disk_full(void);

#endif
