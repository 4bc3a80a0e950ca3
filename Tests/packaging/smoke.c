/* Compiled against the installed libdiffattn-dev by Tests/packaging/run.sh: the header and the
 * library agree on the version and ABI, and a call goes through. */
#include <diffattn.h>
#include <stdio.h>
#include <string.h>

int main(void) {
    char expected[32];
    snprintf(expected, sizeof expected, "%d.%d.%d", DA_VERSION_MAJOR, DA_VERSION_MINOR, DA_VERSION_PATCH);
    if (strcmp(da_version(), expected) != 0 || da_version_number() != DA_VERSION_NUMBER) {
        fprintf(stderr, "header says %s, library says %s\n", expected, da_version());
        return 1;
    }
    if (da_check_abi(DA_ABI_VERSION) != DA_OK) {
        fprintf(stderr, "ABI: %s\n", da_last_error());
        return 1;
    }
    float q[2 * 4] = {1, 0, 0, 1, 1, 1, 0, 0}, out[2 * 4];
    int64_t shape[3] = {1, 2, 4};
    DLTensor t = {q, {kDLCPU, 0}, 3, {kDLFloat, 32, 1}, shape, NULL, 0};
    DLTensor o = {out, {kDLCPU, 0}, 3, {kDLFloat, 32, 1}, shape, NULL, 0};
    if (da_scaled_dot_product_attention(&t, &t, &t, NULL, NULL, &o) != DA_OK) {
        fprintf(stderr, "sdpa: %s\n", da_last_error());
        return 1;
    }
    printf("libdiffattn %s (ABI %u) from the installed package: ok\n", da_version(), da_abi_version());
    return 0;
}
