/* libFuzzer target: the safetensors reader (da_model_load_safetensors).
 *
 * Each input is a whole file: 8-byte little-endian header length, JSON header, data. The first
 * byte picks the load flags (DA_LOAD_STRICT or not; DA_LOAD_SKIP_OTHERS always, so that the
 * model does not grow across inputs); the rest is written to a memfd and loaded by path
 * (/proc/self/fd/N) into one tiny FluxTransformer2DModel (the fixture config of
 * Tests/Fixtures/models/flux, created once), so names match real parameters. Seeds: the fixture
 * checkpoints. Oracles: ASan/LSan, statuses and messages (fuzz_common.h), the model still usable
 * after a failed load (weight_count, and a second load of the same bytes gives the same status). */
#define _GNU_SOURCE
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz_common.h"

static const char *config =
    "{\"_class_name\": \"FluxTransformer2DModel\", \"attention_head_dim\": 8, \"axes_dims_rope\": [2, 2, 4],"
    " \"guidance_embeds\": false, \"in_channels\": 4, \"joint_attention_dim\": 4, \"num_attention_heads\": 1,"
    " \"num_layers\": 1, \"num_single_layers\": 1, \"out_channels\": null, \"patch_size\": 1, \"pooled_projection_dim\": 4}";

static da_model model;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    da_set_num_threads(1);
    if (da_model_create("FluxTransformer2DModel", config, &model) != DA_OK) {
        fprintf(stderr, "fixture model: %s\n", da_last_error());
        abort();
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    int32_t flags = (data[0] & DA_LOAD_STRICT) | DA_LOAD_SKIP_OTHERS;
    data++, size--;
    int fd = memfd_create("fuzz.safetensors", 0);
    if (fd < 0) abort();
    if (size && write(fd, data, size) != (ssize_t)size) abort();
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    da_model m = model;
    da_status st;
    da_load_report r;
    memset(&r, 0, sizeof r);
    r.struct_size = sizeof r;
    st = da_model_load_safetensors(m, path, flags, &r);
    fz_check_status(st, "da_model_load_safetensors");
    int64_t n = -1;
    fz_check_status(da_model_weight_count(m, &n), "da_model_weight_count");
    if (n < 0) abort();
    if (st != DA_OK) {
        /* a failed load leaves the model usable and is repeatable */
        da_status st2 = da_model_load_safetensors(m, path, flags, NULL);
        if (st2 != st) {
            fprintf(stderr, "second load of the same file: %s, first %s\n", da_status_name(st2), da_status_name(st));
            abort();
        }
    }
    close(fd);
    return 0;
}
