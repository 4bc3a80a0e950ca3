// A host engine's view of a diffusers model from C++ through diffattn.hpp.
//
// Builds a small FluxTransformer2DModel from its config.json text, borrows its attention modules
// by path, runs them inside denoising steps with the rotary tables Flux uses, watches them with a
// hook made from lambdas, applies FirstBlockCache around host-run blocks, offloads the weights by
// groups, and puts the model in a pipeline.
//
//   c++ -std=c++17 -O2 examples/cpp/model_hooks.cpp $(pkg-config --cflags --libs diffattn) -o model_hooks
#include <diffattn.hpp>

#include <cmath>
#include <cstdio>

static const char *FLUX_CONFIG = R"({"attention_head_dim": 16, "axes_dims_rope": [4, 4, 8], "in_channels": 16,
  "joint_attention_dim": 32, "num_attention_heads": 2, "num_layers": 2, "num_single_layers": 2,
  "patch_size": 1, "pooled_projection_dim": 32})";

int main() {
    try {
        diffattn::Model flux("FluxTransformer2DModel", FLUX_CONFIG);
        std::printf("%s: %zu attention modules, first %s\n", flux.class_name().c_str(),
                    flux.attn_processor_names().size(), flux.attn_processor_names()[0].c_str());

        // Image tokens (1, 16, 32) and text tokens (1, 8, 32); rotary tables over the 24 joint positions.
        diffattn::Tensor<float> image({1, 16, 32}), text({1, 8, 32});
        for (std::size_t i = 0; i < image.size(); ++i) image[i] = std::sin(0.1f * static_cast<float>(i));
        for (std::size_t i = 0; i < text.size(); ++i) text[i] = std::cos(0.2f * static_cast<float>(i));
        std::vector<double> ids;
        for (int t = 0; t < 24; ++t) ids.insert(ids.end(), {0.0, t < 8 ? 0.0 : (t - 8) / 4, t < 8 ? 0.0 : (t - 8) % 4});
        diffattn::RotaryTables rope =
            diffattn::rotary_tables(ids, {4, 4, 8}, 10000.0, DA_ROTARY_REPEAT_INTERLEAVED, /*float64=*/true);

        // A hook from lambdas on the first double-stream block's attention: counts calls, sees outputs.
        int calls = 0;
        diffattn::HookFunctions watch;
        watch.post_forward = [&calls](const std::string &path, DLTensor *outputs, int32_t n) {
            if (++calls == 1) std::printf("hook on %s: %d outputs, first (%lld, %lld, %lld)\n", path.c_str(), n,
                                          (long long)outputs[0].shape[0], (long long)outputs[0].shape[1],
                                          (long long)outputs[0].shape[2]);
        };
        flux.hook_registry("transformer_blocks.0.attn").register_hook("watch", diffattn::Hook(std::move(watch)));

        diffattn::AttentionRef attn = flux.attention("transformer_blocks.0.attn");  // borrowed: no destroy
        diffattn::ForwardArgs args(image.dl());
        args.encoder_hidden_states(text.dl()).rotary(rope.cos.dl(), rope.sin.dl());
        std::vector<diffattn::Tensor<float>> resident = attn.forward(args);

        // Group offloading: weights leave memory between uses; results are unchanged.
        da_group_offload_config offload = diffattn::defaults<da_group_offload_config>();
        offload.num_blocks_per_group = 1;
        flux.enable_group_offload(offload);
        for (double t : {999.0, 500.0}) {
            diffattn::Model::Step step = flux.step(t);
            std::vector<diffattn::Tensor<float>> out = attn.forward(args);
            if (out[0].values() != resident[0].values()) throw std::runtime_error("offloaded output differs");
            step.done();
        }
        da_group_offload_stats stats = flux.group_offload_stats();
        std::printf("group offloading: %lld groups, %lld onloads, peak %lld of %lld weight bytes resident\n",
                    (long long)stats.groups, (long long)stats.onloads, (long long)stats.peak_resident_bytes,
                    (long long)stats.total_bytes);
        flux.disable_group_offload();

        // FirstBlockCache around host-run blocks: the host runs each block unless the cache says skip.
        da_first_block_cache_config fbc = diffattn::defaults<da_first_block_cache_config>();
        fbc.threshold = 0.2;
        flux.enable_cache(fbc);
        flux.set_cache_context(std::string("cond"));
        std::string decisions;
        for (double t : {999.0, 998.0, 997.0}) {
            diffattn::Model::Step step = flux.step(t);
            diffattn::Tensor<float> h = image, e = text;
            da_block_io io = diffattn::block_io(h.dl(), e.dl());
            for (const std::string &block : flux.transformer_block_paths()) {
                if (!flux.module_begin(block, io)) { decisions += 'S'; continue; }
                decisions += 'C';
                for (float &x : h.values()) x = 0.9f * x + 0.01f * static_cast<float>(t);  // the host's block
                flux.module_end(block, io);
            }
            decisions += ' ';
            step.done();
        }
        std::printf("FirstBlockCache decisions per step (C = computed, S = skipped): %s\n", decisions.c_str());
        flux.disable_cache();

        diffattn::Pipeline pipeline;
        pipeline.add("transformer", flux);
        pipeline.set_use_memory_efficient_attention_xformers(false);
        std::printf("hook calls: %d; processor after the pipeline switch: %s\n", calls,
                    diffattn::processor_name(attn.processor()).c_str());
        return 0;
    } catch (const std::exception &e) {
        std::fprintf(stderr, "model_hooks: %s\n", e.what());
        return 1;
    }
}
