/* Shared pieces of the libdiffattn fuzz harnesses: a byte-stream reader and a builder of DLTensors
 * whose fuzzed geometry (rank, sizes, strides, byte_offset, dtype, device, NULL pointers) is always
 * backed by enough real memory for whatever the library may legitimately read.
 *
 * The rule the builder keeps: a geometry the library must reject by contract (negative sizes,
 * sizes or products beyond 2^40, strides that reach beyond 2^40 elements, ndim outside 0...8, NULL
 * data with elements) may point at a tiny buffer; every other geometry gets a buffer covering
 * every element it addresses. A memory error reported by ASan is therefore a library bug. */
#ifndef DIFFATTN_FUZZ_COMMON_H
#define DIFFATTN_FUZZ_COMMON_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diffattn.h"

/* ---- byte stream ------------------------------------------------------------------------- */

typedef struct {
    const uint8_t *p;
    size_t n, i;
} fz_t;

static inline uint8_t fz_u8(fz_t *f) { return f->i < f->n ? f->p[f->i++] : 0; }
static inline int fz_more(const fz_t *f) { return f->i < f->n; }
static inline uint32_t fz_u32(fz_t *f) {
    uint32_t v = 0;
    for (int k = 0; k < 4; k++) v |= (uint32_t)fz_u8(f) << (8 * k);
    return v;
}
static inline uint64_t fz_u64(fz_t *f) { return (uint64_t)fz_u32(f) | (uint64_t)fz_u32(f) << 32; }
/* 0 ... n-1 */
static inline int fz_range(fz_t *f, int n) { return n <= 1 ? 0 : fz_u8(f) % n; }
static inline int fz_bool(fz_t *f) { return fz_u8(f) & 1; }

/* A size in 0...max, small values likely. */
static inline int64_t fz_small(fz_t *f, int max) { return fz_range(f, max + 1); }

/* An int64 that is usually small and sometimes absurd. */
static inline int64_t fz_i64_edgy(fz_t *f, int small_max) {
    uint8_t sel = fz_u8(f);
    if (sel < 200) return sel % (small_max + 1);
    switch (sel % 8) {
    case 0: return -1;
    case 1: return INT64_MIN;
    case 2: return INT64_MAX;
    case 3: return (int64_t)1 << 40;
    case 4: return ((int64_t)1 << 40) + 1;
    case 5: return (int64_t)1 << 24;
    case 6: return INT32_MAX;
    default: return (int64_t)fz_u64(f);
    }
}

static inline int32_t fz_i32_edgy(fz_t *f, int small_max) {
    uint8_t sel = fz_u8(f);
    if (sel < 220) return sel % (small_max + 1);
    switch (sel % 5) {
    case 0: return -1;
    case 1: return INT32_MIN;
    case 2: return INT32_MAX;
    case 3: return 1 << 20;
    default: return (int32_t)fz_u32(f);
    }
}

/* A float from a palette that reaches the numerical edge cases. */
static inline float fz_float(fz_t *f) {
    uint8_t sel = fz_u8(f);
    if (sel < 160) return ((int)(sel % 33) - 16) / 8.0f;
    switch (sel % 12) {
    case 0: return NAN;
    case 1: return INFINITY;
    case 2: return -INFINITY;
    case 3: return 1e30f;
    case 4: return -1e30f;
    case 5: return 1e-40f; /* denormal */
    case 6: return 3.0e38f;
    case 7: return -0.0f;
    case 8: return 88.7f;
    case 9: return -1e4f;
    default: {
        uint32_t bits = fz_u32(f);
        float v;
        memcpy(&v, &bits, 4);
        return v;
    }
    }
}

static inline double fz_double(fz_t *f) {
    uint8_t sel = fz_u8(f);
    if (sel < 200) return ((int)(sel % 17) - 8) / 4.0;
    switch (sel % 6) {
    case 0: return NAN;
    case 1: return INFINITY;
    case 2: return -INFINITY;
    case 3: return 1e300;
    case 4: return 0.0;
    default: {
        uint64_t bits = fz_u64(f);
        double v;
        memcpy(&v, &bits, 8);
        return v;
    }
    }
}

/* ---- tensors ------------------------------------------------------------------------------ */

#define FZ_MAX_SPAN 8192  /* elements a well-formed fuzzed tensor may address */
#define FZ_LIMIT ((int64_t)1 << 40) /* the library's documented ceiling on sizes and spans */

typedef struct {
    DLTensor t;
    int64_t shape[DA_MAX_NDIM + 2];
    int64_t strides[DA_MAX_NDIM + 2];
    void *buffer;       /* malloc'd; freed by fz_tensor_free */
    size_t buffer_bytes;
    int valid;          /* the geometry is one the library may accept (then buffer covers it) */
    int64_t min_off, max_off; /* element offsets addressed, relative to data+byte_offset */
} fz_tensor;

enum { FZ_F32 = 0, FZ_BOOL = 1 };

/* Element offsets range of a geometry; returns 0 if it exceeds FZ_MAX_SPAN (or overflows). */
static inline int fz_span(int ndim, const int64_t *shape, const int64_t *strides, int64_t *lo, int64_t *hi) {
    int64_t l = 0, h = 0;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] == 0) { *lo = *hi = 0; return 1; }
    }
    for (int i = 0; i < ndim; i++) {
        if (shape[i] <= 1) continue;
        int64_t s = strides[i];
        if (s > FZ_MAX_SPAN || s < -FZ_MAX_SPAN || shape[i] > FZ_MAX_SPAN) return 0;
        int64_t r = s * (shape[i] - 1);
        if (r > 0) h += r; else l += r;
        if (h > FZ_MAX_SPAN || l < -FZ_MAX_SPAN) return 0;
    }
    *lo = l, *hi = h;
    return 1;
}

static inline void fz_tensor_free(fz_tensor *x) {
    free(x->buffer);
    x->buffer = NULL;
}

static inline int64_t fz_numel(int ndim, const int64_t *shape) {
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    return n;
}

/* Builds a tensor of the intended `shape` (rank `ndim`) and kind, then lets the byte stream
 * mutate it (when `mutate`): a size changed, rank changed, strides permuted/padded/negative/zero,
 * dtype or device wrong, NULL data, byte_offset, absurd values. Values are fuzzed floats (or
 * bytes for boolean tensors). The result is always safe to hand to the library. */
static inline DLTensor *fz_tensor_make(fz_t *f, fz_tensor *x, int ndim, const int64_t *shape, int kind, int mutate) {
    memset(x, 0, sizeof *x);
    if (ndim > DA_MAX_NDIM) ndim = DA_MAX_NDIM;
    for (int i = 0; i < ndim; i++) x->shape[i] = shape[i];
    int absurd = 0;
    uint8_t m = mutate ? fz_u8(f) : 0;
    if (mutate && m >= 192) {
        switch (m % 8) {
        case 0: /* change one size */
            if (ndim > 0) x->shape[fz_range(f, ndim)] = fz_small(f, 6);
            break;
        case 1: /* add or drop an axis */
            if (fz_bool(f) && ndim > 0) ndim--;
            else if (ndim < DA_MAX_NDIM) { x->shape[ndim] = 1 + fz_range(f, 2); ndim++; }
            break;
        case 2: /* an absurd size the library must reject */
            if (ndim > 0) {
                static const int64_t bad[] = {-1, INT64_MIN, INT64_MAX, ((int64_t)1 << 40) + 1, -((int64_t)1 << 40)};
                x->shape[fz_range(f, ndim)] = bad[fz_range(f, 5)];
                absurd = 1;
            }
            break;
        case 3: /* product overflow: every axis 2^31 (at least two axes) */
            if (ndim >= 2) {
                for (int i = 0; i < ndim; i++) x->shape[i] = (int64_t)1 << 31;
                absurd = 1;
            }
            break;
        default: break; /* strides/dtype mutations below */
        }
    }
    x->t.ndim = ndim;
    x->t.shape = x->shape;
    x->t.device.device_type = kDLCPU;
    x->t.dtype.code = kind == FZ_BOOL ? (fz_bool(f) ? kDLUInt : 6) : kDLFloat;
    x->t.dtype.bits = kind == FZ_BOOL ? 8 : 32;
    x->t.dtype.lanes = 1;
    size_t esize = kind == FZ_BOOL ? 1 : 4;

    /* strides */
    int smode = mutate ? fz_range(f, 10) : 0;
    int64_t compact[DA_MAX_NDIM];
    {
        int64_t s = 1;
        for (int i = ndim - 1; i >= 0; i--) {
            compact[i] = s;
            int64_t d = x->shape[i] > 0 && x->shape[i] < FZ_MAX_SPAN ? x->shape[i] : 1;
            s *= d;
            if (s > FZ_MAX_SPAN) s = FZ_MAX_SPAN;
        }
    }
    int has_strides = 0;
    switch (smode) {
    case 0: case 1: case 2: break; /* NULL strides (compact) */
    case 3: /* explicit compact */
        for (int i = 0; i < ndim; i++) x->strides[i] = compact[i];
        has_strides = 1;
        break;
    case 4: /* padded: every stride scaled up */
    {
        int64_t s = 1;
        for (int i = ndim - 1; i >= 0; i--) {
            x->strides[i] = s;
            int64_t d = x->shape[i] > 0 && x->shape[i] < FZ_MAX_SPAN ? x->shape[i] : 1;
            s = s * d + fz_range(f, 3);
            if (s > FZ_MAX_SPAN) s = FZ_MAX_SPAN;
        }
        has_strides = 1;
        break;
    }
    case 5: /* a permutation of the compact strides (transposed layouts) */
        for (int i = 0; i < ndim; i++) x->strides[i] = compact[i];
        for (int i = ndim - 1; i > 0; i--) {
            int j = fz_range(f, i + 1);
            int64_t t = x->strides[i]; x->strides[i] = x->strides[j]; x->strides[j] = t;
        }
        has_strides = 1;
        break;
    case 6: /* some negative strides */
        for (int i = 0; i < ndim; i++) x->strides[i] = fz_bool(f) ? -compact[i] : compact[i];
        has_strides = 1;
        break;
    case 7: /* zero strides (broadcast views, aliasing) */
        for (int i = 0; i < ndim; i++) x->strides[i] = fz_bool(f) ? 0 : compact[i];
        has_strides = 1;
        break;
    case 8: /* arbitrary small strides */
        for (int i = 0; i < ndim; i++) x->strides[i] = (int64_t)fz_range(f, 41) - 20;
        has_strides = 1;
        break;
    default: /* an absurd stride that must be rejected (only meaningful with an axis > 1) */
        for (int i = 0; i < ndim; i++) x->strides[i] = compact[i];
        if (ndim > 0) {
            int a = fz_range(f, ndim);
            if (x->shape[a] > 1) {
                static const int64_t bad[] = {INT64_MAX, INT64_MIN, (int64_t)1 << 41, -((int64_t)1 << 41), (int64_t)1 << 62};
                x->strides[a] = bad[fz_range(f, 5)];
                absurd = 1;
            }
        }
        has_strides = 1;
        break;
    }
    if (has_strides) x->t.strides = x->strides;

    /* decide validity and the buffer */
    int rank_ok = ndim >= 0 && ndim <= DA_MAX_NDIM;
    int64_t lo = 0, hi = 0;
    int span_ok = 0;
    if (!absurd && rank_ok) {
        int sizes_ok = 1;
        for (int i = 0; i < ndim; i++) sizes_ok &= x->shape[i] >= 0 && x->shape[i] <= FZ_MAX_SPAN;
        if (sizes_ok && fz_numel(ndim, x->shape) <= FZ_MAX_SPAN) {
            if (has_strides) span_ok = fz_span(ndim, x->shape, x->strides, &lo, &hi);
            else { span_ok = 1; hi = fz_numel(ndim, x->shape) - 1; if (hi < 0) hi = 0; }
        }
    }
    if (!absurd && !span_ok) {
        /* Too big to back with memory but possibly acceptable: fall back to a compact tiny tensor. */
        ndim = ndim > 0 ? 1 : 0;
        x->t.ndim = ndim;
        x->shape[0] = 1;
        x->t.strides = NULL;
        lo = hi = 0;
        span_ok = 1;
    }
    x->valid = !absurd;
    x->min_off = lo, x->max_off = hi;
    size_t elems = absurd ? 4 : (size_t)(hi - lo + 1);
    size_t pad = (size_t)fz_range(f, 3);
    x->buffer_bytes = (elems + pad) * esize + 8;
    x->buffer = malloc(x->buffer_bytes);
    if (kind == FZ_BOOL) {
        uint8_t *b = x->buffer;
        for (size_t i = 0; i < x->buffer_bytes; i++) b[i] = fz_more(f) ? fz_u8(f) % 3 : (uint8_t)(i % 3 != 0);
    } else {
        float *b = x->buffer;
        size_t nf = x->buffer_bytes / 4;
        for (size_t i = 0; i < nf; i++) b[i] = fz_more(f) && (i < 64 || fz_bool(f)) ? fz_float(f) : (float)((int)(i % 7) - 3) * 0.25f;
    }
    /* base = data + byte_offset must sit -lo elements into the buffer */
    size_t base_bytes = (size_t)(-lo) * esize + pad * esize;
    if (fz_bool(f)) {
        x->t.data = x->buffer;
        x->t.byte_offset = base_bytes;
    } else {
        x->t.data = (char *)x->buffer + base_bytes;
        x->t.byte_offset = 0;
    }

    /* rarer mutations of the header that the library must reject */
    if (mutate && m >= 192 && m % 8 >= 4) {
        switch (fz_range(f, 8)) {
        case 0: x->t.dtype.bits = (uint8_t)(fz_bool(f) ? 64 : 16); break;
        case 1: x->t.dtype.code = (uint8_t)fz_range(f, 8); break;
        case 2: x->t.dtype.lanes = (uint16_t)(2 + fz_range(f, 3)); break;
        case 3: x->t.device.device_type = (DLDeviceType)(2 + fz_range(f, 14)); break;
        case 4: if (fz_numel(ndim, x->shape) > 0) x->t.data = NULL; else x->t.data = NULL; break;
        case 5: if (ndim > 0) x->t.shape = NULL; break;
        case 6: x->t.ndim = fz_bool(f) ? DA_MAX_NDIM + 1 + fz_range(f, 3) : -1 - fz_range(f, 3); break;
        default: x->t.byte_offset = fz_bool(f) ? UINT64_MAX : ((uint64_t)1 << 50); break;
        }
        /* A wrong dtype with the same element size (e.g. int32, uint8) may legitimately be read;
         * the buffer covers it. A narrower one (bits 16) covers too. A wider one is rejected. */
    }
    return &x->t;
}

/* Whether a successfully written float32 view equals a sentinel everywhere (nothing written). */
static inline int fz_untouched(const fz_tensor *x, float sentinel) {
    const float *b = x->buffer;
    for (size_t i = 0; i < x->buffer_bytes / 4; i++) {
        if (memcmp(&b[i], &sentinel, 4) != 0) return 0;
    }
    return 1;
}

static inline void fz_fill(fz_tensor *x, float v) {
    float *b = x->buffer;
    for (size_t i = 0; i < x->buffer_bytes / 4; i++) b[i] = v;
}

/* The message contract: an error status comes with a non-empty message; statuses are known. */
static inline void fz_check_status(da_status st, const char *call) {
    if (st < 0 || st > DA_ERR_INTERNAL) {
        fprintf(stderr, "%s: unknown status %d\n", call, st);
        abort();
    }
    if (st == DA_ERR_INTERNAL) {
        fprintf(stderr, "%s: DA_ERR_INTERNAL: %s\n", call, da_last_error());
        abort();
    }
    if (st != DA_OK && da_last_error()[0] == '\0') {
        fprintf(stderr, "%s: status %s with an empty message\n", call, da_status_name(st));
        abort();
    }
}

#endif
