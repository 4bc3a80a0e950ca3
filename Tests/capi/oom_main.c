/* Allocation failure never aborts (issue 18, item 2). Run by Tests/capi/run.sh as its own process:
 *   oom_main limit       under `ulimit -v 3000000`: a (1, 2^20, 320) forward → DA_ERR_OUT_OF_MEMORY
 *                        with the size in the message, then the same module still computes;
 *   oom_main noreserve   a valid (1, 2^33, 32) input over a MAP_NORESERVE mapping (1 TiB of address
 *                        space, never touched) → a clear error, no 1 TiB copy, no abort.
 * Prints "oom: <case>: ok" or "oom: <case>: FAIL <why>"; exits 0 only when the case passed. */
#include <dlpack/dlpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "diffattn.h"

static DLTensor tensor3(void *data, int64_t *shape) {
    DLTensor t;
    memset(&t, 0, sizeof t);
    t.data = data;
    t.device.device_type = kDLCPU;
    t.ndim = 3;
    t.dtype.code = kDLFloat;
    t.dtype.bits = 32;
    t.dtype.lanes = 1;
    t.shape = shape;
    return t;
}

static da_attention module(int64_t dim, int64_t heads) {
    da_attention_config c;
    da_attention_config_init(&c, sizeof c);
    c.query_dim = dim;
    c.heads = heads;
    c.dim_head = dim / heads;
    da_attention a = NULL;
    if (da_attention_create(&c, &a) != DA_OK) return NULL;
    return a;
}

static int forward(da_attention a, float *x, float *out, int64_t *shape) {
    DLTensor tx = tensor3(x, shape), to = tensor3(out, shape);
    da_forward_args args;
    da_forward_args_init(&args, sizeof args);
    args.hidden_states = &tx;
    return da_attention_forward(a, &args, &to, 1);
}

/* After a refused call the module must still compute a small forward. */
static int still_usable(da_attention a, int64_t dim) {
    int64_t s[3] = {1, 8, dim};
    float *x = calloc((size_t)(8 * dim), sizeof(float)), *o = calloc((size_t)(8 * dim), sizeof(float));
    int ok = x && o && forward(a, x, o, s) == DA_OK;
    free(x), free(o);
    return ok;
}

int main(int argc, char **argv) {
    const char *which = argc > 1 ? argv[1] : "";
    da_set_num_threads(2);
    if (strcmp(which, "limit") == 0) {
        da_attention a = module(320, 5);
        int64_t s[3] = {1, (int64_t)1 << 20, 320};
        size_t n = (size_t)s[1] * 320;
        float *x = malloc(n * sizeof(float)); /* 1.34 GB, untouched until the library reads it */
        if (!a || !x) { printf("oom: limit: FAIL setup (module %p, input %p)\n", (void *)a, (void *)x); return 1; }
        memset(x, 0, 4096);
        da_status st = forward(a, x, x, s);
        char m[512];
        snprintf(m, sizeof m, "%s", da_last_error());
        if (st != DA_ERR_OUT_OF_MEMORY || !strstr(m, "bytes")) {
            printf("oom: limit: FAIL status %s \"%s\" (want DA_ERR_OUT_OF_MEMORY naming the bytes)\n", da_status_name(st), m);
            return 1;
        }
        free(x);
        if (!still_usable(a, 320)) { printf("oom: limit: FAIL module unusable after the refusal: %s\n", da_last_error()); return 1; }
        printf("oom: limit: ok (%s: %s; the module computes afterwards)\n", da_status_name(st), m);
        da_attention_destroy(a);
        return 0;
    }
    if (strcmp(which, "noreserve") == 0) {
        int64_t s[3] = {1, (int64_t)1 << 33, 32};
        size_t bytes = (size_t)1 << 40;
        void *x = mmap(NULL, bytes, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (x == MAP_FAILED) { printf("oom: noreserve: skipped (mmap of 1 TiB refused here)\n"); return 0; }
        da_attention a = module(32, 2);
        float out[1];
        DLTensor tx = tensor3(x, s), to = tensor3(out, s);
        da_forward_args args;
        da_forward_args_init(&args, sizeof args);
        args.hidden_states = &tx;
        da_status st = da_attention_forward(a, &args, &to, 1);
        char m[512];
        snprintf(m, sizeof m, "%s", da_last_error());
        if (st == DA_OK || !*m) { printf("oom: noreserve: FAIL status %s \"%s\"\n", da_status_name(st), m); return 1; }
        if (!still_usable(a, 32)) { printf("oom: noreserve: FAIL module unusable afterwards: %s\n", da_last_error()); return 1; }
        printf("oom: noreserve: ok (%s: %s)\n", da_status_name(st), m);
        munmap(x, bytes);
        da_attention_destroy(a);
        return 0;
    }
    printf("usage: oom_main limit|noreserve\n");
    return 2;
}
