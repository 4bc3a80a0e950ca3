// A C++17 program against include/diffattn.h: create an Attention, run a forward, check status.
// Prints "cpp_smoke: ok" and exits 0 on success.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <vector>

#include "diffattn.h"

namespace {

struct AttentionDeleter {
    void operator()(da_attention_s *a) const { da_attention_destroy(a); }
};
using AttentionPtr = std::unique_ptr<da_attention_s, AttentionDeleter>;

struct Tensor {
    std::vector<float> data;
    std::vector<std::int64_t> shape;
    DLTensor dl{};
    explicit Tensor(std::vector<std::int64_t> s) : shape(std::move(s)) {
        std::size_t n = 1;
        for (auto d : shape) n *= static_cast<std::size_t>(d);
        data.assign(n, 0.0f);
        dl.data = data.data();
        dl.device = DLDevice{kDLCPU, 0};
        dl.ndim = static_cast<std::int32_t>(shape.size());
        dl.dtype = DLDataType{kDLFloat, 32, 1};
        dl.shape = shape.data();
        dl.strides = nullptr;
        dl.byte_offset = 0;
    }
};

int fail(const char *what, da_status st) {
    std::printf("cpp_smoke: FAIL %s: %s: %s\n", what, da_status_name(st), da_last_error());
    return 1;
}

} // namespace

int main() {
    if (da_status st = da_check_abi(DA_ABI_VERSION); st != DA_OK) return fail("da_check_abi", st);
    da_attention_config cfg;
    if (da_status st = da_attention_config_init(&cfg, sizeof cfg); st != DA_OK) return fail("config_init", st);
    cfg.query_dim = 32;
    cfg.heads = 4;
    cfg.dim_head = 8;
    da_attention raw = nullptr;
    if (da_status st = da_attention_create(&cfg, &raw); st != DA_OK) return fail("create", st);
    AttentionPtr attention(raw);

    Tensor x({2, 6, 32}), y({2, 6, 32});
    for (std::size_t i = 0; i < x.data.size(); i++) x.data[i] = std::sin(0.1f * static_cast<float>(i));
    da_forward_args args;
    da_forward_args_init(&args, sizeof args);
    args.hidden_states = &x.dl;
    if (da_status st = da_attention_forward(attention.get(), &args, &y.dl, 1); st != DA_OK) return fail("forward", st);
    bool finite = true, nonzero = false;
    for (float v : y.data) {
        finite = finite && std::isfinite(v);
        nonzero = nonzero || v != 0.0f;
    }
    if (!finite || !nonzero) {
        std::printf("cpp_smoke: FAIL output finite=%d nonzero=%d\n", finite, nonzero);
        return 1;
    }
    // An error path from C++: a wrong output shape gives DA_ERR_SHAPE and a message.
    Tensor bad({2, 6, 31});
    if (da_attention_forward(attention.get(), &args, &bad.dl, 1) != DA_ERR_SHAPE || da_last_error()[0] == '\0') {
        std::printf("cpp_smoke: FAIL wrong shape not reported\n");
        return 1;
    }
    std::printf("cpp_smoke: ok (libdiffattn %s, processor %s)\n", da_version(),
                da_processor_name(DA_PROCESSOR_ATTN_PROCESSOR_2_0));
    return 0;
}
