/* libFuzzer target: the model-config reader (da_model_create: JSON text → diffusers model).
 *
 * Two kinds of input, chosen by the first byte:
 *  - structured (most): one of the 11 model classes with its tiny fixture config
 *    (Tests/Fixtures/models/<name>/config.json, read once) in which the byte stream replaces
 *    values of chosen keys with fuzzed JSON values (numbers small, negative, huge, fractional;
 *    strings; arrays; objects; bare bytes) and may add unknown keys. Keys are never dropped: a
 *    missing key takes diffusers' full-size default (FluxTransformer2DModel's is 10 GB), which is
 *    correct behaviour but would turn every such input into a hang.
 *  - raw: the rest of the input as the whole config text, for a class whose defaults are small
 *    (AutoencoderKL), or for an unknown class name. Exercises the JSON parser on anything.
 * Oracles: ASan/LSan; statuses and messages (fuzz_common.h); *out NULL on failure; a created
 * model answers class_name / attn_processor_count / weight_count. */
#include "fuzz_common.h"

#ifndef FIXTURES_DIR
#define FIXTURES_DIR "Tests/Fixtures/models"
#endif

static const char *classes[] = {"UNet2DConditionModel", "UNet3DConditionModel", "UNetMotionModel", "I2VGenXLUNet",
                                "AutoencoderKL", "SD3Transformer2DModel", "FluxTransformer2DModel",
                                "PixArtTransformer2DModel", "HunyuanDiT2DModel", "CogVideoXTransformer3DModel",
                                "AuraFlowTransformer2DModel"};
static const char *dirs[] = {"unet2d", "unet3d", "unet_motion", "i2vgen_xl", "autoencoder_kl", "sd3", "flux",
                             "pixart", "hunyuan_dit", "cogvideox", "auraflow"};
#define NCLASSES 11

/* Top-level entries of a fixture: key text (with quotes) and value text. */
typedef struct {
    int n;
    char *key[128], *val[128];
} fixture_t;
static fixture_t fixtures[NCLASSES];

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    if (fread(s, 1, (size_t)n, f) != (size_t)n) abort();
    s[n] = 0;
    fclose(f);
    return s;
}

/* Splits {"k": v, ...} at depth 1 (strings without escapes, as in the fixtures). */
static void split(const char *s, fixture_t *fx) {
    const char *p = strchr(s, '{');
    if (!p) abort();
    p++;
    while (*p) {
        while (*p && *p != '"' && *p != '}') p++;
        if (*p != '"') break;
        const char *k0 = p++;
        while (*p && *p != '"') p++;
        const char *k1 = ++p;
        while (*p && *p != ':') p++;
        p++;
        while (*p == ' ' || *p == '\n') p++;
        const char *v0 = p;
        int depth = 0, str = 0;
        for (; *p; p++) {
            if (str) { if (*p == '"') str = 0; continue; }
            if (*p == '"') str = 1;
            else if (*p == '[' || *p == '{') depth++;
            else if (*p == ']' || *p == '}') { if (depth == 0) break; depth--; }
            else if (*p == ',' && depth == 0) break;
        }
        const char *v1 = p;
        while (v1 > v0 && (v1[-1] == ' ' || v1[-1] == '\n')) v1--;
        fx->key[fx->n] = strndup(k0, (size_t)(k1 - k0));
        fx->val[fx->n] = strndup(v0, (size_t)(v1 - v0));
        if (++fx->n == 128) break;
        if (*p == ',') p++;
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    da_set_num_threads(1);
    const char *dir = getenv("DIFFATTN_FIXTURES") ? getenv("DIFFATTN_FIXTURES") : FIXTURES_DIR;
    for (int i = 0; i < NCLASSES; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s/config.json", dir, dirs[i]);
        char *s = slurp(path);
        if (!s) { fprintf(stderr, "fuzz_model_config: cannot read %s (set DIFFATTN_FIXTURES)\n", path); abort(); }
        split(s, &fixtures[i]);
        free(s);
    }
    return 0;
}

typedef struct { char *p; size_t n, cap; } buf_t;
static void put(buf_t *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) { b->cap = (b->n + n + 1) * 2; b->p = realloc(b->p, b->cap); }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}
static void puts_(buf_t *b, const char *s) { put(b, s, strlen(s)); }

static const char *words[] = {"silu", "gelu", "default", "CrossAttnDownBlock2D", "DownBlock2D", "UpBlock2D",
                              "CrossAttnUpBlock2D", "UNetMidBlock2DCrossAttn", "", "x", "positional", "fourier",
                              "text", "layer_norm", "rms_norm", "ada_norm", "DownEncoderBlock2D", "gated"};
#define NWORDS ((int)(sizeof words / sizeof words[0]))

static void value(fz_t *f, buf_t *b, int depth) {
    char tmp[64];
    switch (fz_range(f, depth > 1 ? 9 : 12)) {
    case 0: case 1: snprintf(tmp, sizeof tmp, "%d", fz_range(f, 9)); puts_(b, tmp); break;
    case 2: snprintf(tmp, sizeof tmp, "%d", fz_range(f, 65)); puts_(b, tmp); break;
    case 3: snprintf(tmp, sizeof tmp, "-%d", fz_range(f, 3)); puts_(b, tmp); break;
    case 4: { /* (accepted values stay small: "mid_block_layers": 1E2 with 1E2 temporal layers each is a
               * legitimate 10,000-layer model that takes seconds to build) */
        static const char *edgy[] = {"2147483648", "9223372036854775807", "9223372036854775808", "1e308", "-1e400",
                                     "0.5", "1e-05", "-0", "4.0", "2E0", "0.0", "1.5e0", "18446744073709551616"};
        puts_(b, edgy[fz_range(f, 13)]);
        break;
    }
    case 5: puts_(b, (const char *[]){"true", "false", "null"}[fz_range(f, 3)]); break;
    case 6: puts_(b, "\""), puts_(b, words[fz_range(f, NWORDS)]), puts_(b, "\""); break;
    case 7: case 8: { /* array */
        int n = fz_range(f, 5);
        puts_(b, "[");
        for (int i = 0; i < n; i++) { if (i) puts_(b, ", "); value(f, b, depth + 1); }
        puts_(b, "]");
        break;
    }
    case 9: puts_(b, fz_bool(f) ? "{}" : "{\"a\": 1}"); break;
    default: { /* bare bytes: no quotes or backslashes (they could hide the keys that follow), short digit runs */
        int n = 1 + fz_range(f, 12), digits = 0;
        for (int i = 0; i < n; i++) {
            char c = (char)fz_u8(f);
            if (c == '"' || c == '\\' || c == 0) c = ' ';
            if (c >= '0' && c <= '9') { if (++digits > 2) c = ' '; } else digits = 0;
            put(b, &c, 1);
        }
        break;
    }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fz_t f = {data, size, 0};
    uint8_t mode = fz_u8(&f);
    buf_t b = {0};
    const char *cls;
    if (mode < 220) {
        int k = mode % NCLASSES;
        cls = classes[k];
        fixture_t *fx = &fixtures[k];
        puts_(&b, "{");
        for (int i = 0; i < fx->n; i++) {
            if (i) puts_(&b, ", ");
            puts_(&b, fx->key[i]);
            puts_(&b, ": ");
            if (fz_more(&f) && fz_range(&f, 8) == 0) value(&f, &b, 0);
            else puts_(&b, fx->val[i]);
        }
        int extra = fz_range(&f, 3) == 0;
        if (extra) { puts_(&b, ", \"unknown_key_"), puts_(&b, words[fz_range(&f, NWORDS)]), puts_(&b, "\": "), value(&f, &b, 0); }
        puts_(&b, fz_range(&f, 16) ? "}" : "} trailing");
    } else {
        /* raw text for a class with small defaults, or an unknown class */
        static const char *raw_classes[] = {"AutoencoderKL", "NoSuchModel", "", "autoencoderkl"};
        cls = raw_classes[mode % 4];
        size_t n = size - f.i;
        int digits = 0;
        for (size_t i = 0; i < n; i++) {
            char c = (char)data[f.i + i];
            if (c == 0) c = ' ';
            if (c >= '0' && c <= '9') { if (++digits > 2) c = ' '; } else digits = 0;
            put(&b, &c, 1);
        }
        if (!b.p) puts_(&b, "");
    }
    if (getenv("FUZZ_DEBUG")) fprintf(stderr, "class %s config %s\n", cls, b.p);
    da_model m = (da_model)(uintptr_t)0x55;
    da_status st = da_model_create(cls, b.p, &m);
    fz_check_status(st, "da_model_create");
    if (st == DA_OK) {
        const char *name = NULL;
        int64_t n = -1;
        fz_check_status(da_model_class_name(m, &name), "da_model_class_name");
        fz_check_status(da_model_attn_processor_count(m, &n), "da_model_attn_processor_count");
        fz_check_status(da_model_weight_count(m, &n), "da_model_weight_count");
        da_model_destroy(m);
    } else if (m != NULL) {
        fprintf(stderr, "da_model_create failed without setting *out = NULL\n");
        abort();
    }
    free(b.p);
    return 0;
}
