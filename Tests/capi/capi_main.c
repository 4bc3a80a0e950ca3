/* Entry point and helpers of the C API test program (Tests/capi/run.sh builds and runs it). */
#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

#include "capi_test.h"

int capi_passed = 0, capi_failed = 0;
static pthread_mutex_t record_lock = PTHREAD_MUTEX_INITIALIZER;
static int verbose = 0;

void capi_record(int ok, const char *file, int line, const char *what, const char *detail) {
    pthread_mutex_lock(&record_lock);
    if (ok) {
        capi_passed++;
        if (verbose) printf("ok   %s:%d: %s %s\n", file, line, what, detail);
    } else {
        capi_failed++;
        printf("FAIL %s:%d: %s — %s\n", file, line, what, detail);
    }
    pthread_mutex_unlock(&record_lock);
}

int capi_expect_status(da_status got, da_status want, const char *substr, const char *expr,
                       const char *file, int line) {
    const char *msg = da_last_error();
    char detail[768];
    int ok = got == want;
    if (ok && want != DA_OK && (msg == NULL || msg[0] == '\0')) ok = 0;
    if (ok && substr != NULL && strstr(msg, substr) == NULL) ok = 0;
    snprintf(detail, sizeof detail, "got %s (%d), want %s%s%s%s; message: \"%s\"", da_status_name(got), got,
             da_status_name(want), substr ? " with message containing \"" : "", substr ? substr : "",
             substr ? "\"" : "", msg ? msg : "(NULL)");
    capi_record(ok, file, line, expr, detail);
    return ok;
}

void tensor_init(tensor_t *x, void *data, int ndim, const int64_t *shape, const int64_t *strides) {
    memset(x, 0, sizeof *x);
    for (int i = 0; i < ndim && i < DA_MAX_NDIM; i++) {
        x->shape[i] = shape[i];
        if (strides) x->strides[i] = strides[i];
    }
    x->t.data = data;
    x->t.device.device_type = kDLCPU;
    x->t.device.device_id = 0;
    x->t.ndim = ndim;
    x->t.dtype.code = kDLFloat;
    x->t.dtype.bits = 32;
    x->t.dtype.lanes = 1;
    x->t.shape = x->shape;
    x->t.strides = strides ? x->strides : NULL;
    x->t.byte_offset = 0;
}

DLTensor *tens(tensor_t *x, void *data, int ndim, const int64_t *shape, const int64_t *strides) {
    tensor_init(x, data, ndim, shape, strides);
    return &x->t;
}

DLTensor *tens_bool(tensor_t *x, uint8_t *data, int ndim, const int64_t *shape, const int64_t *strides, int code) {
    tensor_init(x, data, ndim, shape, strides);
    x->t.dtype.code = (uint8_t)code;
    x->t.dtype.bits = 8;
    return &x->t;
}

int64_t numel(int ndim, const int64_t *shape) {
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    return n;
}

float *alloc_floats(size_t n) {
    float *p = calloc(n ? n : 1, sizeof(float));
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    return p;
}

void fill_det(float *p, size_t n, uint32_t seed, float amplitude) {
    uint32_t s = seed * 2654435761u + 12345u;
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        p[i] = amplitude * (((float)(s >> 8) / 16777216.0f) * 2.0f - 1.0f);
    }
}

double max_abs_diff(const float *a, const float *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (d != d) return INFINITY;
        if (d > m) m = d;
    }
    return m;
}

/* Normwise relative difference: max |a - b| / max |b|. */
double max_rel_diff(const float *a, const float *b, size_t n) {
    double peak = 0, m = 0;
    for (size_t i = 0; i < n; i++)
        if (fabs(b[i]) > peak) peak = fabs(b[i]);
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= m)) m = d; /* NaN propagates */
    }
    return m / (peak > 0 ? peak : 1.0);
}

int run_isolated(da_status (*fn)(void *), void *arg, char *msg, size_t msgsize) {
    int fds[2];
    if (msgsize) msg[0] = '\0';
    if (pipe(fds) != 0) return ISOLATED_NOT_RUN;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]), close(fds[1]);
        return ISOLATED_NOT_RUN;
    }
    if (pid == 0) {
        close(fds[0]);
        /* a crash report (Swift's "Fatal error: ...") lands in msg as well */
        dup2(fds[1], 2);
        da_status st = fn(arg);
        const char *m = da_last_error();
        ssize_t unused = write(fds[1], m, strlen(m));
        (void)unused;
        close(fds[1]);
        _exit(st & 0xFF);
    }
    close(fds[1]);
    size_t used = 0;
    ssize_t got;
    char sink[256];
    while ((got = read(fds[0], used + 1 < msgsize ? msg + used : sink,
                       used + 1 < msgsize ? msgsize - used - 1 : sizeof sink)) > 0)
        if (used + 1 < msgsize) used += (size_t)got;
    if (msgsize) msg[used < msgsize ? used : msgsize - 1] = '\0';
    close(fds[0]);
    int wstatus = 0;
    if (waitpid(pid, &wstatus, 0) < 0) return ISOLATED_NOT_RUN;
    if (WIFSIGNALED(wstatus)) return ISOLATED_CRASHED - WTERMSIG(wstatus);
    return WEXITSTATUS(wstatus);
}

int msg_contains(const char *needle) { return strstr(da_last_error(), needle) != NULL; }
int msg_nonempty(void) { return da_last_error()[0] != '\0'; }

int fill_weights(da_attention a, uint32_t seed) {
    int64_t count = 0;
    if (da_attention_weight_count(a, &count) != DA_OK) return 0;
    for (int64_t i = 0; i < count; i++) {
        da_weight_info info;
        info.struct_size = sizeof info;
        if (da_attention_weight_info(a, i, &info) != DA_OK) return 0;
        int64_t n = numel(info.ndim, info.shape);
        float *w = alloc_floats((size_t)n);
        /* weights ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)); vectors get a small spread around 0 or 1 */
        int64_t fan_in = info.ndim >= 2 ? n / info.shape[0] : 1;
        fill_det(w, (size_t)n, seed + (uint32_t)i * 7919u, (float)(1.0 / sqrt((double)fan_in)));
        if (info.ndim == 1 && strstr(info.name, "norm") && strstr(info.name, "weight"))
            for (int64_t j = 0; j < n; j++) w[j] = 1.0f + 0.1f * w[j];
        tensor_t t;
        da_status st = da_attention_set_weight(a, info.name, tens(&t, w, info.ndim, info.shape, NULL));
        free(w);
        if (st != DA_OK) return 0;
    }
    return 1;
}

da_attention make_attention(const da_attention_config *cfg, uint32_t seed) {
    da_attention a = NULL;
    da_status st = da_attention_create(cfg, &a);
    if (st != DA_OK) {
        CHECK(0, "da_attention_create failed: %s: %s", da_status_name(st), da_last_error());
        return NULL;
    }
    if (!fill_weights(a, seed)) {
        CHECK(0, "filling weights failed: %s", da_last_error());
        da_attention_destroy(a);
        return NULL;
    }
    return a;
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "-v") == 0) verbose = 1;
    setvbuf(stdout, NULL, _IOLBF, 0);
    /* Fixed, small thread count: results must not depend on it, and the tests stay quick. */
    if (da_set_num_threads(2) != DA_OK) CHECK(0, "da_set_num_threads(2): %s", da_last_error());

    test_basics();
    test_forward();
    test_helpers();
    test_sdpa();
    test_misuse();
    test_threads();
    test_dit();
    test_dit_ip();
    test_caches();
    test_casting();
    test_processor_query();
    test_model_defaults();
    test_hook_scripts();
    test_hooks_newer();
    test_borrow();
    test_lse();
    test_parallel();
    test_offload_threads();
    test_pretrained();
    test_disk_full();

    printf("capi-c: %d passed, %d failed\n", capi_passed, capi_failed);
    return capi_failed == 0 ? 0 : 1;
}
