/* libFuzzer target: da_scaled_dot_product_attention (and da_sdpa_with_lse), with fuzzed strided geometry.
 *
 * Sizes (batch, query/key heads, query/key length, head dims) are small; every operand gets its
 * own rank (3 or 4), axis permutation, padding, negative or zero strides and byte_offset; the mask
 * is none, float32 or boolean in any broadcastable (or not) rank and layout; options fuzz
 * is_causal, scale, enable_gqa, algorithm, dropout_p and struct_size.
 *
 * Oracles: ASan/LSan; statuses and messages as in fuzz_common.h; on failure `out` is untouched;
 * on success with finite, moderate inputs the result matches a double-precision reference
 * (fully masked rows give zeros, as the header documents), and MATH and FLASH agree. */
#include "fuzz_common.h"

typedef struct {
    const float *p;   /* base element */
    int64_t s[4];     /* element strides over (b, h, n, d), broadcast axes 0 */
} view_t;

/* A (B, H, N, D) operand: rank 4, or rank 3 (heads, tokens, dim) taken as B = 1 when b == 1. */
static DLTensor *operand(fz_t *f, fz_tensor *x, const int64_t shape4[4], int allow3, int mutate) {
    if (allow3 && shape4[0] == 1 && fz_range(f, 3) == 0) return fz_tensor_make(f, x, 3, shape4 + 1, FZ_F32, mutate);
    return fz_tensor_make(f, x, 4, shape4, FZ_F32, mutate);
}

static view_t view_of(const fz_tensor *x, const int64_t want[4]) {
    view_t v;
    const DLTensor *t = &x->t;
    v.p = (const float *)((const char *)t->data + t->byte_offset);
    int nd = t->ndim;
    int64_t st[4] = {0, 0, 0, 0}, sh[4] = {1, 1, 1, 1};
    int64_t compact = 1;
    for (int i = nd - 1; i >= 0; i--) {
        int a = 4 - nd + i;
        sh[a] = t->shape[i];
        st[a] = t->strides ? t->strides[i] : compact;
        compact *= t->shape[i];
    }
    for (int a = 0; a < 4; a++) v.s[a] = sh[a] == 1 && want[a] != 1 ? 0 : st[a];
    return v;
}

/* The tensor still has the intended (B, H, N, D) shape (rank 4, or rank 3 with B = 1). */
static int intended(const fz_tensor *x, const int64_t shape4[4]) {
    const DLTensor *t = &x->t;
    if (!x->valid || t->shape != x->shape) return 0;
    if (t->ndim == 4) return !memcmp(t->shape, shape4, 4 * sizeof(int64_t));
    if (t->ndim == 3) return shape4[0] == 1 && !memcmp(t->shape, shape4 + 1, 3 * sizeof(int64_t));
    return 0;
}

static int finite_moderate(const fz_tensor *x, const int64_t shape[4]) {
    view_t v = view_of(x, shape);
    for (int64_t b = 0; b < shape[0]; b++)
        for (int64_t h = 0; h < shape[1]; h++)
            for (int64_t n = 0; n < shape[2]; n++)
                for (int64_t d = 0; d < shape[3]; d++) {
                    float e = v.p[b * v.s[0] + h * v.s[1] + n * v.s[2] + d * v.s[3]];
                    if (!(fabsf(e) <= 64.0f)) return 0;
                }
    return 1;
}

static void dump(const char *name, const fz_tensor *x) {
    const DLTensor *t = &x->t;
    fprintf(stderr, "  %s: ndim %d shape", name, t->ndim);
    for (int i = 0; i < t->ndim && t->shape; i++) fprintf(stderr, " %lld", (long long)t->shape[i]);
    fprintf(stderr, " strides");
    for (int i = 0; i < t->ndim && t->strides; i++) fprintf(stderr, " %lld", (long long)t->strides[i]);
    fprintf(stderr, "%s byte_offset %llu code %d bits %d\n", t->strides ? "" : " NULL", (unsigned long long)t->byte_offset,
            t->dtype.code, t->dtype.bits);
}

static long n_ok, n_checked, n_failed;
static void stats(void) { fprintf(stderr, "fuzz_sdpa: %ld ok (%ld checked against the reference), %ld rejected\n", n_ok, n_checked, n_failed); }

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    if (getenv("FUZZ_STATS")) atexit(stats);
    da_set_num_threads(1);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fz_t f = {data, size, 0};
    int64_t b = 1 + fz_range(&f, 3), hq = 1 + fz_range(&f, 4);
    int64_t hk = fz_range(&f, 3) == 0 ? 1 + fz_range(&f, 4) : hq;
    int64_t kb = fz_range(&f, 4) == 0 ? 1 : b;
    int64_t nq = fz_range(&f, 9), nk = fz_range(&f, 9), d = fz_range(&f, 9), dv = fz_range(&f, 9);
    if (fz_range(&f, 8)) { nq += nq == 0, nk += nk == 0, d += d == 0, dv += dv == 0; }
    int threads = 1 + fz_range(&f, 2);
    da_set_num_threads(threads);
    int64_t qs[4] = {b, hq, nq, d}, ks[4] = {kb, hk, nk, d}, vs[4] = {kb, hk, nk, dv}, os[4] = {b, hq, nq, dv};
    int mut = fz_u8(&f) >= 200; /* occasionally break the geometry */
    fz_tensor q, k, v, o, m;
    int64_t ks_given[4] = {ks[0], ks[1], ks[2], ks[3]};
    if (mut && fz_bool(&f)) ks_given[3] += 1 + fz_range(&f, 2); /* head_dim mismatch */
    DLTensor *qd = operand(&f, &q, qs, 1, 1), *kd = operand(&f, &k, ks_given, 1, 1), *vd = operand(&f, &v, vs, 1, 1);
    /* out: rank follows the query's (rank 3 only when the query is) */
    DLTensor *od = q.t.ndim == 3 ? fz_tensor_make(&f, &o, 3, os + 1, FZ_F32, mut) : fz_tensor_make(&f, &o, 4, os, FZ_F32, mut);
    /* zero output strides alias elements: safe for memory, skipped by the numerics oracle */
    int have_m = 0, mask_kind = -1;
    DLTensor *md = NULL;
    uint8_t msel = fz_u8(&f);
    if (msel % 3 != 0) {
        int64_t ms[4];
        int nd = fz_range(&f, 5);
        int64_t full[4] = {b, hq, nq, nk};
        for (int i = 0; i < nd; i++) {
            int a = 4 - nd + i;
            ms[i] = fz_range(&f, 3) == 0 ? 1 : full[a];
            if (mut && fz_range(&f, 4) == 0) ms[i] = fz_small(&f, 5);
        }
        mask_kind = fz_range(&f, 3) == 0 ? FZ_BOOL : FZ_F32;
        md = fz_tensor_make(&f, &m, nd, ms, mask_kind, mut);
        have_m = 1;
    }
    da_sdpa_options opt;
    da_sdpa_options_init(&opt, sizeof opt);
    opt.is_causal = fz_range(&f, 4) == 0;
    opt.enable_gqa = fz_range(&f, 3) != 0;
    if (fz_range(&f, 4) == 0) { opt.has_scale = 1; opt.scale = fz_u8(&f) < 200 ? 0.125 * fz_range(&f, 9) : fz_double(&f); }
    opt.algorithm = fz_u8(&f) < 245 ? fz_range(&f, 3) : fz_i32_edgy(&f, 3);
    if (fz_u8(&f) >= 250) opt.dropout_p = fz_double(&f);
    if (fz_u8(&f) >= 250) opt.struct_size = (uint32_t)fz_range(&f, (int)sizeof opt);
    const da_sdpa_options *optp = fz_u8(&f) < 240 ? &opt : NULL;
    if (fz_u8(&f) >= 252) { /* NULL operands */
        switch (fz_range(&f, 4)) { case 0: qd = NULL; break; case 1: kd = NULL; break; case 2: vd = NULL; break; default: od = NULL; }
    }
    if (getenv("FUZZ_DEBUG")) {
        fprintf(stderr, "b %lld hq %lld hk %lld kb %lld nq %lld nk %lld d %lld dv %lld causal %d gqa %d alg %d scale %d %g opts %p\n",
                (long long)b, (long long)hq, (long long)hk, (long long)kb, (long long)nq, (long long)nk, (long long)d,
                (long long)dv, opt.is_causal, opt.enable_gqa, opt.algorithm, opt.has_scale, opt.scale, (const void *)optp);
        dump("q", &q), dump("k", &k), dump("v", &v), dump("out", &o);
        if (have_m) dump("mask", &m);
    }
    /* A third of the runs go through da_sdpa_with_lse with a fuzzed (B, H, Nq) lse (rank follows out). */
    fz_tensor l = {0};
    DLTensor *ld = NULL;
    int with_lse = fz_range(&f, 3) == 0;
    int64_t ls4[4] = {1, b, hq, nq};
    if (with_lse) {
        ld = o.t.ndim == 3 ? fz_tensor_make(&f, &l, 2, ls4 + 2, FZ_F32, mut) : fz_tensor_make(&f, &l, 3, ls4 + 1, FZ_F32, mut);
        if (fz_u8(&f) >= 252) ld = NULL;
        if (ld) fz_fill(&l, 12345.0f);
    }
    fz_fill(&o, 12345.0f);
    da_status st = with_lse ? da_sdpa_with_lse(qd, kd, vd, md, optp, od, ld)
                            : da_scaled_dot_product_attention(qd, kd, vd, md, optp, od);
    fz_check_status(st, with_lse ? "da_sdpa_with_lse" : "da_scaled_dot_product_attention");
    if (with_lse && ld && st != DA_OK && !fz_untouched(&l, 12345.0f)) {
        fprintf(stderr, "da_sdpa_with_lse failed (%s: %s) but wrote lse\n", da_status_name(st), da_last_error());
        abort();
    }
    /* The lse oracle needs distinct lse elements too. */
    int lse_check = with_lse && ld && st == DA_OK && l.valid && l.t.shape == l.shape;
    view_t vl = {0};
    if (lse_check) {
        vl = view_of(&l, ls4);
        size_t span = (size_t)(l.max_off - l.min_off + 1);
        unsigned char *seen = calloc(span, 1);
        for (int64_t i0 = 0; i0 < b && lse_check; i0++)
            for (int64_t h = 0; h < hq && lse_check; h++)
                for (int64_t i = 0; i < nq && lse_check; i++) {
                    int64_t off = i0 * vl.s[1] + h * vl.s[2] + i * vl.s[3] - l.min_off;
                    if (off < 0 || (size_t)off >= span || seen[off]++) lse_check = 0;
                }
        free(seen);
    }
    if (st == DA_OK) n_ok++; else n_failed++;
    if (st != DA_OK) {
        if (!fz_untouched(&o, 12345.0f)) {
            fprintf(stderr, "SDPA failed (%s: %s) but wrote out\n", da_status_name(st), da_last_error());
            abort();
        }
    } else if (intended(&o, os) && intended(&q, qs) && intended(&k, ks) && intended(&v, vs) && fz_numel(4, os) > 0 &&
               (!have_m || (m.valid && m.t.shape == m.shape)) && nk > 0 && d > 0) {
        /* Numerics oracle, only for unmutated geometry, moderate finite inputs, non-aliasing out. */
        /* out elements must be distinct memory (permuted or zero strides can alias) */
        int out_alias = 0;
        {
            view_t w = view_of(&o, os);
            size_t span = (size_t)(o.max_off - o.min_off + 1);
            unsigned char *seen = calloc(span, 1);
            for (int64_t i0 = 0; i0 < b && !out_alias; i0++)
                for (int64_t h = 0; h < hq && !out_alias; h++)
                    for (int64_t i = 0; i < nq && !out_alias; i++)
                        for (int64_t c = 0; c < dv && !out_alias; c++) {
                            int64_t off = i0 * w.s[0] + h * w.s[1] + i * w.s[2] + c * w.s[3] - o.min_off;
                            if (off < 0 || (size_t)off >= span || seen[off]++) out_alias = 1;
                        }
            free(seen);
        }
        const da_sdpa_options *eo = optp ? optp : &opt;
        double scale = optp && opt.has_scale ? opt.scale : 1.0 / sqrt((double)d);
        int check = !out_alias && finite_moderate(&q, qs) && finite_moderate(&k, ks) && finite_moderate(&v, vs) &&
                    fabs(scale) <= 4 && q.t.ndim >= 3;
        int64_t hkv = k.t.ndim == 4 ? k.t.shape[1] : k.t.shape[0];
        view_t vq = view_of(&q, qs), vk = view_of(&k, (int64_t[]){b, hkv, nk, d}), vv = view_of(&v, (int64_t[]){b, hkv, nk, dv});
        view_t vo = view_of(&o, os), vm = {0};
        if (have_m) {
            int64_t mfull[4] = {b, hq, nq, nk};
            vm = view_of(&m, mfull);
            if (mask_kind == FZ_F32) {
                /* additive masks: finite moderate values or -inf only */
                const float *mp = vm.p;
                for (int64_t i0 = 0; i0 < b && check; i0++)
                    for (int64_t i1 = 0; i1 < hq && check; i1++)
                        for (int64_t i2 = 0; i2 < nq && check; i2++)
                            for (int64_t i3 = 0; i3 < nk && check; i3++) {
                                float e = mp[i0 * vm.s[0] + i1 * vm.s[1] + i2 * vm.s[2] + i3 * vm.s[3]];
                                if (!(fabsf(e) <= 64.0f || e == -INFINITY)) check = 0;
                            }
            }
        }
        (void)eo;
        n_checked += check;
        for (int64_t i0 = 0; i0 < b && check; i0++)
            for (int64_t h = 0; h < hq && check; h++) {
                int64_t kh = h / (hq / hkv);
                for (int64_t i = 0; i < nq && check; i++) {
                    double sc[16], mx = -INFINITY;
                    for (int64_t j = 0; j < nk; j++) {
                        double s = 0;
                        for (int64_t c = 0; c < d; c++)
                            s += (double)vq.p[i0 * vq.s[0] + h * vq.s[1] + i * vq.s[2] + c * vq.s[3]] *
                                 vk.p[i0 * vk.s[0] + kh * vk.s[1] + j * vk.s[2] + c * vk.s[3]];
                        s *= scale;
                        if (opt.is_causal && optp && j > i) s = -INFINITY;
                        if (have_m) {
                            int64_t off = i0 * vm.s[0] + h * vm.s[1] + i * vm.s[2] + j * vm.s[3];
                            if (mask_kind == FZ_BOOL) { if (!((const uint8_t *)vm.p)[off]) s = -INFINITY; }
                            else s += ((const float *)vm.p)[off];
                        }
                        sc[j] = s;
                        if (s > mx) mx = s;
                    }
                    double den = 0;
                    for (int64_t j = 0; j < nk; j++) den += mx == -INFINITY ? 0 : exp(sc[j] - mx);
                    if (lse_check) {
                        float got = vl.p[i0 * vl.s[1] + h * vl.s[2] + i * vl.s[3]];
                        double want = mx == -INFINITY ? -INFINITY : mx + log(den);
                        if (!(want == -INFINITY ? got == -INFINITY : fabs(got - want) <= 1e-4 * (fabs(want) + 1))) {
                            fprintf(stderr, "LSE mismatch at (%lld,%lld,%lld): got %.9g want %.9g\n", (long long)i0,
                                    (long long)h, (long long)i, got, want);
                            abort();
                        }
                    }
                    for (int64_t c = 0; c < dv; c++) {
                        double acc = 0, mag = 0;
                        for (int64_t j = 0; j < nk; j++) {
                            double w = mx == -INFINITY ? 0 : exp(sc[j] - mx) / den;
                            double x = vv.p[i0 * vv.s[0] + kh * vv.s[1] + j * vv.s[2] + c * vv.s[3]];
                            acc += w * x;
                            mag += fabs(w * x);
                        }
                        float got = vo.p[i0 * vo.s[0] + h * vo.s[1] + i * vo.s[2] + c * vo.s[3]];
                        double tol = 1e-4 * (mag + 1) + 1e-5;
                        if (!(fabs(got - acc) <= tol)) {
                            fprintf(stderr,
                                    "SDPA mismatch at (%lld,%lld,%lld,%lld): got %.9g want %.9g (alg %d, causal %d, mask %d, threads %d)\n",
                                    (long long)i0, (long long)h, (long long)i, (long long)c, got, acc, eo->algorithm,
                                    opt.is_causal && optp, mask_kind, threads);
                            abort();
                        }
                    }
                }
            }
    }
    fz_tensor_free(&q), fz_tensor_free(&k), fz_tensor_free(&v), fz_tensor_free(&o);
    if (have_m) fz_tensor_free(&m);
    fz_tensor_free(&l);
    return 0;
}
