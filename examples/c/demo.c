/*
 * demo.c — libdiffattn from C, in the shape a host application would use it.
 *
 *  1. create the self-attention layer of a Stable Diffusion 1.5 UNet block
 *     (diffusers: Attention(query_dim=320, heads=8, dim_head=40)),
 *  2. list its weights (diffusers' state-dict names and shapes) and fill them,
 *  3. run a forward on hidden states of shape (2, 4096, 320) and time it,
 *  4. call the attention kernel on its own: scaled_dot_product_attention on (1, 8, 1024, 64).
 *
 * Build:  gcc -std=c99 -O2 demo.c -I<include dir> -L<lib dir> -ldiffattn -lm -o demo
 * (examples/c/run.sh does this; DIFFATTN_INCLUDE / DIFFATTN_LIBDIR choose an installed copy.)
 */
#define _POSIX_C_SOURCE 199309L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <diffattn.h>

/* Every call returns a status; on failure, print it with the thread's last error message. */
#define TRY(call)                                                                                        \
    do {                                                                                                 \
        da_status st_ = (call);                                                                          \
        if (st_ != DA_OK) {                                                                              \
            fprintf(stderr, "%s:%d: %s failed: %s: %s\n", __FILE__, __LINE__, #call, da_status_name(st_), \
                    da_last_error());                                                                    \
            exit(1);                                                                                     \
        }                                                                                                \
    } while (0)

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* A compact float32 CPU DLTensor over caller-owned memory (the library never keeps it). */
static DLTensor make_tensor(float *data, int32_t ndim, int64_t *shape) {
    DLTensor t;
    memset(&t, 0, sizeof t);
    t.data = data;
    t.device.device_type = kDLCPU;
    t.device.device_id = 0;
    t.ndim = ndim;
    t.dtype.code = kDLFloat;
    t.dtype.bits = 32;
    t.dtype.lanes = 1;
    t.shape = shape;
    t.strides = NULL; /* compact row-major */
    t.byte_offset = 0;
    return t;
}

static float *alloc_floats(size_t n) {
    float *p = malloc(n * sizeof(float));
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    return p;
}

/* Deterministic values in [-scale, scale]. */
static void fill(float *p, size_t n, unsigned seed, float scale) {
    unsigned s = seed * 2654435761u + 1u;
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        p[i] = scale * ((float)(s >> 8) / 8388608.0f - 1.0f);
    }
}

static int64_t numel(int32_t ndim, const int64_t *shape) {
    int64_t n = 1;
    for (int32_t i = 0; i < ndim; i++) n *= shape[i];
    return n;
}

int main(int argc, char **argv) {
    int64_t tokens = argc > 1 ? atoll(argv[1]) : 4096; /* 64 × 64 latent pixels */
    if (tokens < 1) tokens = 4096;

    TRY(da_check_abi(DA_ABI_VERSION));
    printf("libdiffattn %s (header %d.%d.%d), %d threads\n", da_version(), DA_VERSION_MAJOR, DA_VERSION_MINOR,
           DA_VERSION_PATCH, (int)da_get_num_threads());

    /* ---- 1. the layer --------------------------------------------------------------------- */
    da_attention_config config;
    TRY(da_attention_config_init(&config, sizeof config)); /* diffusers' defaults */
    config.query_dim = 320;
    config.heads = 8;
    config.dim_head = 40;
    da_attention attn = NULL;
    TRY(da_attention_create(&config, &attn));

    da_attention_info info;
    info.struct_size = sizeof info;
    TRY(da_attention_get_info(attn, &info));
    printf("Attention(query_dim=320, heads=%lld, dim_head=40): inner_dim %lld, scale %.6f, processor %s\n",
           (long long)info.heads, (long long)info.inner_dim, info.scale, da_processor_name(info.processor));

    /* ---- 2. weights: list, then load (here: deterministic stand-ins for a checkpoint) ------ */
    int64_t count = 0;
    TRY(da_attention_weight_count(attn, &count));
    printf("state dict (%lld entries):\n", (long long)count);
    for (int64_t i = 0; i < count; i++) {
        da_weight_info w;
        w.struct_size = sizeof w;
        TRY(da_attention_weight_info(attn, i, &w));
        printf("  %-16s (", w.name);
        for (int32_t d = 0; d < w.ndim; d++) printf("%s%lld", d ? ", " : "", (long long)w.shape[d]);
        printf(w.ndim == 1 ? ",)\n" : ")\n");

        int64_t n = numel(w.ndim, w.shape);
        float *values = alloc_floats((size_t)n);
        int64_t fan_in = w.ndim == 2 ? w.shape[1] : 1;
        fill(values, (size_t)n, (unsigned)(i + 1), w.ndim == 2 ? 1.0f / sqrtf((float)fan_in) : 0.01f);
        DLTensor value = make_tensor(values, w.ndim, w.shape);
        TRY(da_attention_set_weight(attn, w.name, &value)); /* copied; our buffer can go */
        free(values);
    }

    /* ---- 3. forward ----------------------------------------------------------------------- */
    int64_t in_shape[3] = {2, tokens, 320};
    size_t n_in = (size_t)numel(3, in_shape);
    float *hidden = alloc_floats(n_in);
    fill(hidden, n_in, 1234u, 1.0f);
    DLTensor hidden_states = make_tensor(hidden, 3, in_shape);

    da_forward_args args;
    TRY(da_forward_args_init(&args, sizeof args));
    args.hidden_states = &hidden_states; /* self-attention: no encoder states, no mask */

    da_output_shapes shapes;
    shapes.struct_size = sizeof shapes;
    TRY(da_attention_output_shapes(attn, &args, &shapes));
    float *result = alloc_floats((size_t)numel(shapes.ndim[0], shapes.shape[0]));
    DLTensor output = make_tensor(result, shapes.ndim[0], shapes.shape[0]);

    double t0 = now_seconds();
    TRY(da_attention_forward(attn, &args, &output, 1));
    double elapsed = now_seconds() - t0;
    printf("forward: hidden_states (2, %lld, 320) -> output (%lld, %lld, %lld) in %.1f ms with %s\n", (long long)tokens,
           (long long)shapes.shape[0][0], (long long)shapes.shape[0][1], (long long)shapes.shape[0][2], elapsed * 1e3,
           da_processor_name(info.processor));
    printf("  output[0, 0, :4]  = %.6f %.6f %.6f %.6f\n", result[0], result[1], result[2], result[3]);
    size_t last = (size_t)numel(3, shapes.shape[0]) - 4;
    printf("  output[-1, -1, -4:] = %.6f %.6f %.6f %.6f\n", result[last], result[last + 1], result[last + 2],
           result[last + 3]);

    /* The same layer with the classic processor (scores materialised), for comparison. */
    da_processor_config classic;
    TRY(da_processor_config_init(&classic, sizeof classic, DA_PROCESSOR_ATTN_PROCESSOR));
    TRY(da_attention_set_processor(attn, &classic));
    DLManagedTensor *outs[DA_MAX_OUTPUTS];
    int32_t n_outs = 0;
    t0 = now_seconds();
    TRY(da_attention_forward_alloc(attn, &args, outs, DA_MAX_OUTPUTS, &n_outs)); /* library allocates */
    elapsed = now_seconds() - t0;
    const float *classic_out = (const float *)outs[0]->dl_tensor.data;
    double max_diff = 0;
    for (size_t i = 0; i < (size_t)numel(3, shapes.shape[0]); i++) {
        double d = fabs((double)classic_out[i] - (double)result[i]);
        if (d > max_diff) max_diff = d;
    }
    printf("forward with %s: %.1f ms, max |difference| %.2e\n", da_processor_name(DA_PROCESSOR_ATTN_PROCESSOR),
           elapsed * 1e3, max_diff);
    da_tensor_free(outs[0]);

    /* ---- 4. the attention kernel on its own ------------------------------------------------ */
    int64_t qkv_shape[4] = {1, 8, 1024, 64}; /* (batch, heads, tokens, head_dim) */
    size_t n_qkv = (size_t)numel(4, qkv_shape);
    float *q = alloc_floats(n_qkv), *k = alloc_floats(n_qkv), *v = alloc_floats(n_qkv), *o = alloc_floats(n_qkv);
    fill(q, n_qkv, 7u, 1.0f);
    fill(k, n_qkv, 8u, 1.0f);
    fill(v, n_qkv, 9u, 1.0f);
    DLTensor tq = make_tensor(q, 4, qkv_shape), tk = make_tensor(k, 4, qkv_shape);
    DLTensor tv = make_tensor(v, 4, qkv_shape), to = make_tensor(o, 4, qkv_shape);
    da_sdpa_options options;
    TRY(da_sdpa_options_init(&options, sizeof options)); /* scale 1/sqrt(64), not causal */
    TRY(da_scaled_dot_product_attention(&tq, &tk, &tv, NULL, &options, &to)); /* warm-up */
    t0 = now_seconds();
    TRY(da_scaled_dot_product_attention(&tq, &tk, &tv, NULL, &options, &to));
    elapsed = now_seconds() - t0;
    double flops = 4.0 * 8 * 1024.0 * 1024.0 * 64; /* two GEMMs per head */
    printf("scaled_dot_product_attention (1, 8, 1024, 64): %.2f ms, %.1f GFLOP/s; out[0,0,0,:4] = %.6f %.6f %.6f %.6f\n",
           elapsed * 1e3, flops / elapsed * 1e-9, o[0], o[1], o[2], o[3]);

    /* An error, on purpose: the library answers with a status and a message, never an abort. */
    options.dropout_p = 0.5;
    da_status st = da_scaled_dot_product_attention(&tq, &tk, &tv, NULL, &options, &to);
    printf("dropout_p = 0.5 is refused: %s: %s\n", da_status_name(st), da_last_error());

    free(q), free(k), free(v), free(o), free(hidden), free(result);
    da_attention_destroy(attn);
    return st == DA_ERR_INVALID_ARGUMENT ? 0 : 1;
}
