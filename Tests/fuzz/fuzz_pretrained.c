/* libFuzzer target: model folders (da_model_load_pretrained, issue 18).
 *
 * An input is a folder: byte 0 picks the flags (DA_LOAD_STRICT, DA_LOAD_ALLOW_RANDOM_INIT,
 * DA_LOAD_SKIP_OTHERS) and whether the class is named or taken from config.json; then config.json
 * and diffusion_pytorch_model.safetensors.index.json as NUL-terminated texts (an empty index = no
 * index file: a single diffusion_pytorch_model.safetensors); then up to three shards, each a 32-bit
 * little-endian length and its bytes, written as diffusion_pytorch_model-0000k-of-00003.safetensors
 * (the first also as the single file). Seeds: the sharded Flux that Tests/Fixtures/gen_pretrained.py
 * saved with diffusers. Oracles: ASan/LSan, statuses and messages (fuzz_common.h); a loaded model
 * answers its key queries, and a model refusing to run names a weight. */
#define _GNU_SOURCE
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz_common.h"

static char dir[64];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    da_set_num_threads(1);
    snprintf(dir, sizeof dir, "%s", "/tmp/diffattn-fuzz-pretrained-XXXXXX");
    if (!mkdtemp(dir)) abort();
    return 0;
}

static void put(const char *name, const uint8_t *p, size_t n) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (!p) { unlink(path); return; }
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (n && fwrite(p, 1, n, f) != n) abort();
    fclose(f);
}

/* The next NUL-terminated text (NULL when the input ends first). */
static const uint8_t *text(fz_t *f, size_t *len) {
    size_t start = f->i;
    while (f->i < f->n && f->p[f->i] != 0) f->i++;
    if (f->i >= f->n) return NULL;
    *len = f->i - start;
    f->i++;
    return f->p + start;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fz_t f = {data, size, 0};
    uint8_t mode = fz_u8(&f);
    int32_t flags = mode & (DA_LOAD_STRICT | DA_LOAD_SKIP_OTHERS | DA_LOAD_ALLOW_RANDOM_INIT);
    size_t clen = 0, ilen = 0;
    const uint8_t *cfg = text(&f, &clen), *idx = cfg ? text(&f, &ilen) : NULL;
    put("config.json", cfg, clen);
    put("diffusion_pytorch_model.safetensors.index.json", idx && ilen ? idx : NULL, ilen);
    static const char *shards[3] = {"diffusion_pytorch_model-00001-of-00003.safetensors",
                                    "diffusion_pytorch_model-00002-of-00003.safetensors",
                                    "diffusion_pytorch_model-00003-of-00003.safetensors"};
    for (int k = 0; k < 3; k++) {
        size_t n = fz_more(&f) ? fz_u32(&f) : 0;
        if (n > f.n - f.i) n = f.n - f.i;
        const uint8_t *p = fz_more(&f) || n == 0 ? f.p + f.i : NULL;
        f.i += n;
        put(shards[k], (mode & (0x10 << k)) ? NULL : p, n); /* a bit drops a shard file */
        if (k == 0) put("diffusion_pytorch_model.safetensors", p, n);
    }
    da_model m = NULL;
    da_load_report r;
    memset(&r, 0, sizeof r);
    r.struct_size = sizeof r;
    da_status st = da_model_load_pretrained(dir, (mode & 0x80) ? "FluxTransformer2DModel" : NULL, flags, &m, &r);
    fz_check_status(st, "da_model_load_pretrained");
    if (st != DA_OK) {
        if (m) { fprintf(stderr, "*out not NULL after a failed load\n"); abort(); }
        return 0;
    }
    for (int32_t which = DA_KEYS_MISSING; which <= DA_KEYS_UNLOADED; which++) {
        int64_t n = -1;
        fz_check_status(da_model_load_key_count(m, which, &n), "da_model_load_key_count");
        for (int64_t i = 0; i < n && i < 4; i++) {
            const char *name = NULL;
            if (da_model_load_key(m, which, i, &name) != DA_OK || !name || !*name) { fprintf(stderr, "key %d/%lld\n", which, (long long)i); abort(); }
        }
        if (which == DA_KEYS_UNLOADED && n > 0 && (flags & DA_LOAD_ALLOW_RANDOM_INIT)) {
            fprintf(stderr, "weights marked unloaded despite DA_LOAD_ALLOW_RANDOM_INIT\n");
            abort();
        }
    }
    da_model_destroy(m);
    return 0;
}
