// A diffusers-style attention layer from C++ through diffattn.hpp.
//
// Builds the self-attention of a Stable Diffusion 1.5 transformer block, loads weights by
// diffusers' state-dict names, runs both classic processors on the same input, calls the
// standalone SDPA kernel, and shows an error arriving as an exception.
//
//   c++ -std=c++17 -O2 examples/cpp/demo.cpp $(pkg-config --cflags --libs diffattn) -o demo && ./demo
#include <diffattn.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>

int main() {
    try {
        diffattn::check_abi();
        std::printf("libdiffattn %s, %d threads\n", diffattn::version().c_str(), diffattn::num_threads());

        da_attention_config config = diffattn::attention_config(/*query_dim=*/320, /*heads=*/8, /*dim_head=*/40);
        config.out_bias = 1;
        diffattn::Attention attn(config);

        std::mt19937 rng(0);
        std::normal_distribution<float> normal(0.0f, 0.05f);
        auto weights = attn.weights();
        for (const diffattn::WeightInfo &w : weights) {
            diffattn::Tensor<float> value(w.shape);
            for (float &x : value.values()) x = normal(rng);
            attn.set_weight(w.name, value);
        }
        std::printf("Attention(320, heads=8, dim_head=40): %zu weights, processor %s\n", weights.size(),
                    diffattn::processor_name(attn.processor()).c_str());

        diffattn::Tensor<float> hidden({2, 1024, 320});  // (batch, 32x32 latent tokens, channels)
        std::normal_distribution<float> unit(0.0f, 1.0f);
        for (float &x : hidden.values()) x = unit(rng);

        diffattn::Attention moved = std::move(attn);  // handles move; `attn` is now empty
        auto fast = moved.forward(hidden);
        moved.set_processor(DA_PROCESSOR_ATTN_PROCESSOR);
        auto classic = moved.forward(hidden);
        float diff = 0.0f;
        for (std::size_t i = 0; i < fast[0].size(); ++i) diff = std::max(diff, std::fabs(fast[0][i] - classic[0][i]));
        std::printf("output (%lld, %lld, %lld); max |AttnProcessor - AttnProcessor2_0| = %.2e\n",
                    (long long)fast[0].shape()[0], (long long)fast[0].shape()[1], (long long)fast[0].shape()[2], diff);
        if (!(diff < 1e-3f)) return 1;

        diffattn::Tensor<float> q({1, 8, 256, 64}, 0.5f), k({1, 8, 256, 64}, 0.25f), v({1, 8, 256, 64}, 1.0f);
        diffattn::SDPAOptions options;
        options.is_causal = true;
        diffattn::Tensor<float> o = diffattn::scaled_dot_product_attention(q, k, v, nullptr, options);
        std::printf("scaled_dot_product_attention (1, 8, 256, 64), causal: o[0] = %.3f\n", o[0]);

        try {
            diffattn::Attention bad(diffattn::attention_config(320, 8, 40));
            bad.set_weight("to_q.weight", diffattn::Tensor<float>({3, 3}));
        } catch (const diffattn::Error &e) {
            std::printf("errors arrive as exceptions: %s\n", e.what());
            if (e.status() != DA_ERR_SHAPE) return 1;
        }
        return 0;
    } catch (const std::exception &e) {
        std::fprintf(stderr, "demo: %s\n", e.what());
        return 1;
    }
}
