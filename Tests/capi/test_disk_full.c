/* "Disk full" for group offloading (issue 18, item 8): offload files on a small tmpfs. Enabling
 * offloading whose files do not fit fails with DA_ERR_IO and changes nothing (the model computes as
 * before); a deleted offload file that cannot be written again (the release's repair) fails the
 * call with DA_ERR_IO, and once space is back the model is whole. Needs mount(2) (root, or a user
 * namespace); where the sandbox refuses it the case is reported as skipped. */
#include <errno.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "capi_test.h"

static const char *FLUXD = "{\"attention_head_dim\": 8, \"axes_dims_rope\": [2, 2, 4], \"in_channels\": 4, "
                           "\"joint_attention_dim\": 4, \"num_attention_heads\": 1, \"num_layers\": 2, "
                           "\"num_single_layers\": 1, \"patch_size\": 1, \"pooled_projection_dim\": 4}";

enum { DL = 6, DC = 8 };

static da_status attn_forward(da_model m, float *out) {
    static float x[DL * DC], e[2 * DC];
    float eo[2 * DC];
    fill_det(x, DL * DC, 5, 1.0f);
    fill_det(e, 2 * DC, 6, 1.0f);
    da_attention a = NULL;
    da_status st = da_model_get_attention(m, "transformer_blocks.1.attn", &a);
    if (st != DA_OK) return st;
    tensor_t tx, te, to[2];
    int64_t xs[3] = {1, DL, DC}, es[3] = {1, 2, DC};
    da_forward_args args;
    da_forward_args_init(&args, sizeof args);
    args.hidden_states = tens(&tx, x, 3, xs, NULL);
    args.encoder_hidden_states = tens(&te, e, 3, es, NULL);
    DLTensor outs[2] = {*tens(&to[0], out, 3, xs, NULL), *tens(&to[1], eo, 3, es, NULL)};
    return da_attention_forward(a, &args, outs, 2);
}

static int offload_to(da_model m, const char *dir) {
    da_group_offload_config c;
    da_group_offload_config_init(&c, sizeof c);
    c.num_blocks_per_group = 1;
    c.offload_to_disk_path = dir;
    return da_model_enable_group_offload(m, "cpu", &c);
}

void test_disk_full(void) {
    char dir[] = "/tmp/diffattn-diskfull-XXXXXX";
    if (!mkdtemp(dir)) { CHECK(0, "mkdtemp: %s", strerror(errno)); return; }
    if (mount("tmpfs", dir, "tmpfs", 0, "size=4k") != 0) {
        printf("skipped: disk-full injection (mount tmpfs: %s)\n", strerror(errno));
        rmdir(dir);
        return;
    }
    da_model m = NULL;
    if (EXPECT_ST(da_model_create("FluxTransformer2DModel", FLUXD, &m), DA_OK) == 0) { umount(dir); rmdir(dir); return; }
    float ref[DL * DC], out[DL * DC];
    EXPECT_ST(attn_forward(m, ref), DA_OK);
    /* 1. the files do not fit: nothing changes */
    EXPECT_ERR(offload_to(m, dir), DA_ERR_IO, dir);
    da_group_offload_stats s = {.struct_size = sizeof s};
    EXPECT_ERR(da_model_group_offload_stats(m, &s), DA_ERR_STATE, "not enabled");
    CHECK(attn_forward(m, out) == DA_OK && memcmp(out, ref, sizeof out) == 0,
          "disk full while enabling offloading: DA_ERR_IO, the model computes as before");
    /* 2. room again (a bigger tmpfs): offloading works, results unchanged */
    umount(dir);
    if (mount("tmpfs", dir, "tmpfs", 0, "size=4m") != 0) { CHECK(0, "remount: %s", strerror(errno)); da_model_destroy(m); rmdir(dir); return; }
    EXPECT_ST(offload_to(m, dir), DA_OK);
    CHECK(attn_forward(m, out) == DA_OK && memcmp(out, ref, sizeof out) == 0, "offloaded to the tmpfs: same output");
    EXPECT_ST(da_model_disable_group_offload(m), DA_OK);
    CHECK(attn_forward(m, out) == DA_OK && memcmp(out, ref, sizeof out) == 0, "offloading removed: the model is whole");
    da_model_destroy(m);
    umount(dir);
    rmdir(dir);
}
