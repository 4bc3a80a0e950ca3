// Compiled with g++ -std=c++17 -Wall -Wextra -Werror: the header is usable from C++.
#include "diffattn.h"
#include "diffattn.h" // include guard

#include <cstdint>
#include <type_traits>

static_assert(std::is_same<da_status, std::int32_t>::value, "da_status is int32_t");
static_assert(std::is_standard_layout<da_attention_config>::value, "config is standard layout");
static_assert(sizeof(((da_weight_info *)nullptr)->shape) == DA_MAX_NDIM * sizeof(std::int64_t), "shape array");

int header_cxx_uses();
int header_cxx_uses() {
    da_attention_config c{};
    da_sdpa_options o{};
    int ok = da_attention_config_init(&c, sizeof c) == DA_OK && da_sdpa_options_init(&o, sizeof o) == DA_OK;
    std::int32_t kind = 0;
    ok = ok && da_processor_kind_from_name("AttnProcessor", &kind) == DA_OK;
    auto fn = &da_scaled_dot_product_attention; // a declaration with C linkage
    return ok && fn != nullptr && da_status_name(DA_ERR_SHAPE) != nullptr;
}
