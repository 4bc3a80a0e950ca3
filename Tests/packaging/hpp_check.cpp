// Checks of bindings/cpp/diffattn.hpp, compiled by Tests/packaging/run.sh against the installed
// headers (and against the checkout by `make test-packaging` before the packages exist).
#include <diffattn.hpp>

#include <cmath>
#include <cstdio>
#include <string>
#include <type_traits>

static int failures = 0;
#define EXPECT(cond)                                                        \
    do {                                                                    \
        if (!(cond)) {                                                      \
            std::fprintf(stderr, "%s:%d: failed: %s\n", __FILE__, __LINE__, #cond); \
            ++failures;                                                     \
        }                                                                   \
    } while (0)

static_assert(!std::is_copy_constructible_v<diffattn::Attention>, "handles are move-only");
static_assert(std::is_nothrow_move_constructible_v<diffattn::Attention>, "handles move without throwing");

int main() {
    diffattn::check_abi();
    EXPECT(diffattn::version() == std::to_string(DA_VERSION_MAJOR) + "." + std::to_string(DA_VERSION_MINOR) + "." +
                                      std::to_string(DA_VERSION_PATCH));

    // Moving transfers the handle: the source is empty, the target works.
    diffattn::Attention a(diffattn::attention_config(16, 2, 8));
    da_attention raw = a.handle();
    diffattn::Attention b = std::move(a);
    EXPECT(a.handle() == nullptr && b.handle() == raw);
    EXPECT(b.info().inner_dim == 16);
    EXPECT(b.processor() == DA_PROCESSOR_ATTN_PROCESSOR_2_0);
    EXPECT(b.weights().size() == 5);  // to_q, to_k, to_v, to_out.0 weight and bias

    // Errors are exceptions with the status and the library's message.
    try {
        b.set_weight("to_q.weight", diffattn::Tensor<float>({2, 2}));
        EXPECT(false);
    } catch (const diffattn::Error &e) {
        EXPECT(e.status() == DA_ERR_SHAPE);
        EXPECT(std::string(e.what()).find("to_q.weight") != std::string::npos);
    }
    try {
        b.weight("no_such.weight");
        EXPECT(false);
    } catch (const diffattn::Error &e) {
        EXPECT(e.status() == DA_ERR_NOT_FOUND);
    }
    try {
        diffattn::Attention bad(diffattn::attention_config(0));
        EXPECT(false);
    } catch (const diffattn::Error &e) {
        EXPECT(e.status() == DA_ERR_INVALID_ARGUMENT);
    }

    // Weights round-trip; forward gives diffusers' output shape.
    diffattn::Tensor<float> w({16, 16});
    for (std::size_t i = 0; i < w.size(); ++i) w[i] = static_cast<float>(i % 7) * 0.01f;
    b.set_weight("to_q.weight", w);
    EXPECT(b.weight("to_q.weight").values() == w.values());
    diffattn::Tensor<float> x({1, 5, 16}, 0.5f);
    auto out = b.forward(x);
    EXPECT(out.size() == 1 && out[0].shape() == std::vector<int64_t>({1, 5, 16}));

    // Library-allocated results are freed by ManagedTensor and copied out honouring strides.
    diffattn::ManagedTensor heads = b.head_to_batch_dim(x.dl());
    diffattn::Tensor<float> copy = heads.to_tensor();
    EXPECT(copy.shape() == std::vector<int64_t>({2, 5, 8}));
    diffattn::Tensor<float> back = b.batch_to_head_dim(copy.dl()).to_tensor();
    EXPECT(back.values() == x.values());

    // SDPA with uniform keys averages the values.
    diffattn::Tensor<float> q({1, 1, 3, 4}, 1.0f), k({1, 1, 3, 4}, 1.0f), v({1, 1, 3, 2});
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i);
    diffattn::Tensor<float> o = diffattn::scaled_dot_product_attention(q, k, v);
    EXPECT(o.shape() == std::vector<int64_t>({1, 1, 3, 2}));
    EXPECT(std::fabs(o[0] - 2.0f) < 1e-5f && std::fabs(o[1] - 3.0f) < 1e-5f);

    // Processor names and kinds.
    EXPECT(diffattn::processor_kind("AttnProcessor") == DA_PROCESSOR_ATTN_PROCESSOR);
    EXPECT(diffattn::processor_name(DA_PROCESSOR_ATTN_PROCESSOR_2_0) == "AttnProcessor2_0");
    EXPECT(diffattn::processor_is_implemented(DA_PROCESSOR_ATTN_PROCESSOR));

    std::printf("diffattn.hpp: %s\n", failures ? "FAILED" : "ok");
    return failures ? 1 : 0;
}
