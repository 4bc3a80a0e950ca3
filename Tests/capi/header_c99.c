/* Compiled with gcc -std=c99 -Wall -Wextra -Werror -pedantic: the header is clean C99. */
#include "diffattn.h"

int header_c99_uses(void);
int header_c99_uses(void) {
    da_attention_config c;
    da_forward_args args;
    da_sdpa_options o;
    da_output_shapes shapes;
    da_weight_info w;
    da_attention_info info;
    da_processor_config p;
    da_attention a = NULL;
    int ok = da_attention_config_init(&c, sizeof c) == DA_OK;
    ok &= da_forward_args_init(&args, sizeof args) == DA_OK;
    ok &= da_sdpa_options_init(&o, sizeof o) == DA_OK;
    (void)shapes, (void)w, (void)info, (void)p;
    c.query_dim = 8;
    if (da_attention_create(&c, &a) == DA_OK) da_attention_destroy(a);
    return ok && da_check_abi(DA_ABI_VERSION) == DA_OK && da_version()[0] != '\0' &&
           DA_VERSION_NUMBER == DA_VERSION_MAJOR * 10000 + DA_VERSION_MINOR * 100 + DA_VERSION_PATCH &&
           DA_MAX_OUTPUTS >= 1 && DA_MAX_NDIM == 8 && da_processor_name(DA_PROCESSOR_ATTN_PROCESSOR_2_0) != NULL;
}
