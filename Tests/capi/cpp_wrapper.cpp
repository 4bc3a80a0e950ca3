// The C++17 wrapper (bindings/cpp/diffattn.hpp) against the C API it wraps: every result the
// wrapper returns is compared with the same call made directly through diffattn.h on the same
// handle or on a twin built the same way. Prints "cpp-wrapper: N passed, N failed".
#include <diffattn.hpp>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

int passed = 0, failed = 0;

void record(bool ok, int line, const std::string &what) {
    if (ok) {
        ++passed;
    } else {
        ++failed;
        std::printf("FAIL cpp_wrapper.cpp:%d %s\n", line, what.c_str());
    }
}
#define CHECK(cond, what) record((cond), __LINE__, std::string(#cond " — ") + (what))

// Runs `body`, expecting a diffattn::Error with `status`; returns its message.
template <class F> std::string expect_error(int line, da_status status, F body) {
    try {
        body();
        record(false, line, std::string("no exception; expected ") + da_status_name(status));
    } catch (const diffattn::Error &e) {
        record(e.status() == status && !e.message().empty(), line,
               std::string("expected ") + da_status_name(status) + ", got " + e.what());
        return e.message();
    }
    return "";
}

bool same(const std::vector<float> &a, const float *b) { return std::memcmp(a.data(), b, a.size() * sizeof(float)) == 0; }

diffattn::Tensor<float> ramp(std::vector<int64_t> shape, float step) {
    diffattn::Tensor<float> t(std::move(shape));
    for (std::size_t i = 0; i < t.size(); ++i) t[i] = std::sin(static_cast<float>(i) * step);
    return t;
}

// The C forward of `attention` on `hidden` (one output of hidden's shape).
std::vector<float> c_forward(da_attention attention, const diffattn::Tensor<float> &hidden) {
    da_forward_args args;
    da_forward_args_init(&args, sizeof args);
    args.hidden_states = hidden.dl();
    diffattn::Tensor<float> out(hidden.shape());
    da_status s = da_attention_forward(attention, &args, out.dl(), 1);
    if (s != DA_OK) throw std::runtime_error(std::string("C forward: ") + da_last_error());
    return out.values();
}

const char *FLUX = R"({"attention_head_dim": 8, "axes_dims_rope": [2, 2, 4], "in_channels": 4,
    "joint_attention_dim": 4, "num_attention_heads": 1, "num_layers": 2, "num_single_layers": 1,
    "patch_size": 1, "pooled_projection_dim": 4})";

void test_attention_and_errors() {
    diffattn::Attention attn(diffattn::attention_config(32, 2, 16));
    diffattn::Tensor<float> x = ramp({2, 5, 32}, 0.37f);
    auto y = attn.forward(x);
    CHECK(y.size() == 1 && same(y[0].values(), c_forward(attn.handle(), x).data()), "forward = C forward");
    auto alloc = attn.forward_alloc(diffattn::ForwardArgs(x.dl()));
    CHECK(alloc.size() == 1 && same(y[0].values(), alloc[0].to_tensor().data()), "forward_alloc = forward");

    // caller-owned output with strides: (B, L, C) stored as (L, B, C)
    std::vector<float> storage(y[0].size());
    int64_t shape[3] = {2, 5, 32}, strides[3] = {32, 64, 1};
    DLTensor strided{storage.data(), {kDLCPU, 0}, 3, {kDLFloat, 32, 1}, shape, strides, 0};
    attn.forward(diffattn::ForwardArgs(x.dl()), &strided, 1);
    bool ok = true;
    for (int64_t b = 0; b < 2; ++b)
        for (int64_t l = 0; l < 5; ++l)
            for (int64_t c = 0; c < 32; ++c)
                ok = ok && storage[static_cast<std::size_t>(l * 64 + b * 32 + c)] == y[0][static_cast<std::size_t>((b * 5 + l) * 32 + c)];
    CHECK(ok, "strided caller-owned output holds the forward");

    // weights round-trip and the C state dict
    auto weights = attn.weights();
    int64_t count = 0;
    da_attention_weight_count(attn.handle(), &count);
    CHECK(static_cast<int64_t>(weights.size()) == count && weights[0].name == "to_q.weight", "weights() = C state dict");
    diffattn::Tensor<float> w = ramp(weights[0].shape, 0.11f);
    attn.set_weight("to_q.weight", w);
    CHECK(attn.weight("to_q.weight").values() == w.values(), "set_weight / weight round-trip");

    // processors and switches
    attn.set_processor(DA_PROCESSOR_ATTN_PROCESSOR);
    CHECK(attn.processor() == DA_PROCESSOR_ATTN_PROCESSOR, "set_processor(kind)");
    attn.set_attention_slice(1);
    CHECK(attn.processor() == DA_PROCESSOR_SLICED_ATTN_PROCESSOR, "set_attention_slice");
    attn.set_attention_slice(DA_NONE);
    attn.fuse_projections();
    CHECK(attn.info().fused_projections == 1, "fuse_projections");
    attn.unfuse_projections();

    // errors carry the status and the message
    std::string msg = expect_error(__LINE__, DA_ERR_SHAPE, [&] { attn.set_weight("to_q.weight", diffattn::Tensor<float>({3, 3})); });
    CHECK(msg.find("to_q.weight") != std::string::npos, "message names the weight: " + msg);
    expect_error(__LINE__, DA_ERR_NOT_FOUND, [&] { attn.set_weight("nope", w); });
    da_attention_config bad = diffattn::attention_config(32, 2, 16);
    bad.norm_num_groups = 7;
    expect_error(__LINE__, DA_ERR_VALUE, [&] { diffattn::Attention a(bad); });

    // move-only ownership
    da_attention raw = attn.handle();
    diffattn::Attention moved = std::move(attn);
    CHECK(moved.handle() == raw && !attn, "move transfers the handle");
    diffattn::Attention other(diffattn::attention_config(32, 2, 16));
    other = std::move(moved);
    CHECK(other.handle() == raw, "move assignment");
    da_attention_info info = diffattn::sized<da_attention_info>();
    CHECK(da_attention_get_info(raw, &info) == DA_OK, "moved handle still alive");
}

void test_sdpa_and_rotary() {
    diffattn::Tensor<float> q = ramp({1, 2, 6, 8}, 0.3f), k = ramp({1, 2, 7, 8}, 0.7f), v = ramp({1, 2, 7, 4}, 0.9f);
    diffattn::SDPAOptions options;
    options.scale = 0.5;
    diffattn::Tensor<float> o = diffattn::scaled_dot_product_attention(q, k, v, nullptr, options);
    diffattn::Tensor<float> c({1, 2, 6, 4});
    da_sdpa_options opts;
    da_sdpa_options_init(&opts, sizeof opts);
    opts.has_scale = 1;
    opts.scale = 0.5;
    da_scaled_dot_product_attention(q.dl(), k.dl(), v.dl(), nullptr, &opts, c.dl());
    CHECK(o.values() == c.values(), "SDPA = C SDPA");
    options.is_causal = true;
    expect_error(__LINE__, DA_ERR_INVALID_ARGUMENT, [&] {
        diffattn::Tensor<float> mask({6, 7}, 0.0f);
        diffattn::scaled_dot_product_attention(q, k, v, mask.dl(), options);
    });

    std::vector<double> positions = {0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 1, 1, 1, 0, 0, 1, 1, 1};
    diffattn::RotaryTables t = diffattn::rotary_tables(positions, {2, 2, 4}, 10000.0, DA_ROTARY_REPEAT_INTERLEAVED, true);
    DLManagedTensor *cos = nullptr, *sin = nullptr;
    const int64_t axes[3] = {2, 2, 4};
    da_rotary_tables(positions.data(), 6, 3, axes, 10000.0, 1.0, 1.0, DA_ROTARY_REPEAT_INTERLEAVED, 1, &cos, &sin);
    CHECK(t.cos.to_tensor().values() == diffattn::ManagedTensor(cos).to_tensor().values() &&
              t.sin.to_tensor().values() == diffattn::ManagedTensor(sin).to_tensor().values(),
          "rotary_tables = C rotary tables");
}

void test_hooks() {
    diffattn::Attention attn(diffattn::attention_config(16, 2, 8));
    diffattn::Tensor<float> x = ramp({1, 3, 16}, 0.5f), doubled = x;
    for (float &value : doubled.values()) value *= 2.0f;
    const std::vector<float> want = c_forward(attn.handle(), doubled);

    int pre = 0, post = 0;
    auto alive = std::make_shared<int>(0);
    {
        diffattn::HookFunctions f;
        f.pre_forward = [&pre, alive](const std::string &path, DLTensor *h) {
            ++pre;
            if (!path.empty()) throw std::logic_error("standalone module path is ''");
            float *data = static_cast<float *>(h->data);
            for (int64_t i = 0; i < h->shape[0] * h->shape[1] * h->shape[2]; ++i) data[i] *= 2.0f;
        };
        f.post_forward = [&post](const std::string &, DLTensor *, int32_t n) { post += n; };
        diffattn::Hook hook(std::move(f));
        diffattn::HookRegistry registry = attn.hook_registry();
        registry.register_hook("double", hook);
        CHECK(registry.has_hook("double") && registry.hook_names() == std::vector<std::string>{"double"}, "registered");
        expect_error(__LINE__, DA_ERR_VALUE, [&] { registry.register_hook("double", hook); });
    }  // the Hook object is gone; the registration keeps the callables alive
    CHECK(alive.use_count() == 2, "registration keeps the lambda alive");
    auto y = attn.forward(x);
    CHECK(pre == 1 && post == 1, "callbacks ran once: pre " + std::to_string(pre) + " post " + std::to_string(post));
    CHECK(same(y[0].values(), want.data()), "pre_forward's in-place change reaches the module (= C forward on 2x)");
    attn.hook_registry().remove_hook("double");
    CHECK(alive.use_count() == 1, "removing the hook destroys the callables");
    CHECK(same(attn.forward(x)[0].values(), c_forward(attn.handle(), x).data()), "hook removed");

    // exceptions stay on the C++ side of the boundary and come back to the caller
    diffattn::HookFunctions thrower;
    thrower.pre_forward = [](const std::string &, DLTensor *) { throw std::out_of_range("from the hook"); };
    attn.hook_registry().register_hook("thrower", diffattn::Hook(std::move(thrower)));
    bool rethrown = false;
    try {
        attn.forward(x);
    } catch (const std::out_of_range &e) {
        rethrown = std::string(e.what()) == "from the hook";
    }
    CHECK(rethrown, "the hook's own exception reaches the caller");
    da_forward_args args;
    da_forward_args_init(&args, sizeof args);
    args.hidden_states = x.dl();
    diffattn::Tensor<float> out(x.shape());
    da_status s = da_attention_forward(attn.handle(), &args, out.dl(), 1);
    CHECK(s == DA_ERR_VALUE && std::strstr(da_last_error(), "pre_forward"),
          std::string("the C call fails with a status naming the callback: ") + da_last_error());
    diffattn::check(DA_OK);  // consume the exception the direct C call left pending
    attn.hook_registry().remove_hook("thrower");

    diffattn::HookFunctions refuses;
    refuses.initialize_hook = [](const std::string &) { throw diffattn::Error(DA_ERR_STATE, "not now"); };
    expect_error(__LINE__, DA_ERR_STATE, [&] { attn.hook_registry().register_hook("refuses", diffattn::Hook(std::move(refuses))); });
    CHECK(!attn.hook_registry().has_hook("refuses"), "a failed initialize_hook registers nothing");
}

void test_model_pipeline_caches() {
    diffattn::Model model("FluxTransformer2DModel", FLUX);
    da_model twin = nullptr;
    da_model_create("FluxTransformer2DModel", FLUX, &twin);
    CHECK(model.class_name() == "FluxTransformer2DModel", model.class_name());
    auto names = model.attn_processor_names();
    int64_t count = 0;
    da_model_attn_processor_count(twin, &count);
    CHECK(static_cast<int64_t>(names.size()) == count && names[0] == "transformer_blocks.0.attn.processor", names[0]);
    CHECK(model.attn_processor(names[0]).kind == DA_PROCESSOR_FLUX_ATTN_PROCESSOR, "attn_processor(name)");
    CHECK(model.module_paths(DA_MODULE_ATTENTION).size() == names.size(), "module_paths");
    CHECK(model.module_class("transformer_blocks.0.attn") == "FluxAttention", "module_class");
    expect_error(__LINE__, DA_ERR_NOT_FOUND, [&] { model.attention("no.such.module"); });

    // a borrowed module = the C borrowed module of the twin (same config, same initial weights)
    diffattn::AttentionRef a = model.attention("transformer_blocks.0.attn");
    da_attention ta = nullptr;
    da_model_get_attention(twin, "transformer_blocks.0.attn", &ta);
    diffattn::Tensor<float> h = ramp({1, 4, 8}, 0.4f), e = ramp({1, 2, 8}, 0.8f);
    std::vector<double> positions(6 * 3);
    for (std::size_t i = 0; i < positions.size(); ++i) positions[i] = static_cast<double>(i % 5);
    diffattn::RotaryTables rope = diffattn::rotary_tables(positions, {2, 2, 4}, 10000.0, DA_ROTARY_REPEAT_INTERLEAVED, true);
    auto outs = a.forward(diffattn::ForwardArgs(h.dl()).encoder_hidden_states(e.dl()).rotary(rope.cos.dl(), rope.sin.dl()));
    da_dit_args dit;
    da_dit_args_init(&dit, sizeof dit);
    dit.rotary_cos = rope.cos.dl();
    dit.rotary_sin = rope.sin.dl();
    da_forward_args args;
    da_forward_args_init(&args, sizeof args);
    args.hidden_states = h.dl();
    args.encoder_hidden_states = e.dl();
    args.dit = &dit;
    diffattn::Tensor<float> c0({1, 4, 8}), c1({1, 2, 8});
    DLTensor cout[2] = {*c0.dl(), *c1.dl()};
    CHECK(da_attention_forward(ta, &args, cout, 2) == DA_OK, da_last_error());
    CHECK(outs.size() == 2 && outs[0].values() == c0.values() && outs[1].values() == c1.values(),
          "Flux forward with DiT rotary arguments = C forward");

    // set_attn_processor, model-wide
    model.set_attn_processor(DA_PROCESSOR_FLUX_ATTN_PROCESSOR_2_0);
    CHECK(a.processor() == DA_PROCESSOR_FLUX_ATTN_PROCESSOR_2_0, "set_attn_processor reaches the borrowed module");

    // group offloading: same outputs inside a step; stats as the C call reports them
    const diffattn::ForwardArgs joint = diffattn::ForwardArgs(h.dl()).encoder_hidden_states(e.dl());
    const std::vector<float> before = a.forward(joint)[0].values();
    da_group_offload_config offload = diffattn::defaults<da_group_offload_config>();
    offload.num_blocks_per_group = 1;
    model.enable_group_offload(offload);
    {
        auto step = model.step(500.0);
        CHECK(a.forward(joint)[0].values() == before, "offloaded forward = resident forward");
        step.done();
    }
    da_group_offload_stats stats = model.group_offload_stats(), cstats = diffattn::sized<da_group_offload_stats>();
    da_model_group_offload_stats(model.handle(), &cstats);
    CHECK(stats.groups > 0 && stats.groups == cstats.groups && stats.onloads == cstats.onloads, "group_offload_stats");
    diffattn::Tensor<float> wq({8, 8}, 0.5f);
    expect_error(__LINE__, DA_ERR_STATE, [&] { model.load_state_dict({{"transformer_blocks.0.attn.to_q.weight", wq.dl()}}); });
    model.disable_group_offload();
    expect_error(__LINE__, DA_ERR_STATE, [&] { model.group_offload_stats(); });

    // FirstBlockCache through enable_cache and the block protocol, against the twin driven from C
    da_first_block_cache_config fbc = diffattn::defaults<da_first_block_cache_config>();
    fbc.threshold = 0.1;
    model.enable_cache(fbc);
    da_model_enable_cache(twin, DA_CACHE_FIRST_BLOCK, &fbc);
    CHECK(model.enabled_cache() == DA_CACHE_FIRST_BLOCK, "enabled_cache");
    model.set_cache_context(std::string("cond"));
    da_model_set_cache_context(twin, "cond");
    auto blocks = model.transformer_block_paths();
    std::string decisions, cdecisions;
    for (int step = 0; step < 2; ++step) {
        diffattn::Tensor<float> hw = ramp({1, 4, 8}, 0.2f), ew = ramp({1, 2, 8}, 0.6f), hc = hw, ec = ew;
        auto s = model.step(999.0 - step);
        da_model_begin_step(twin, 999.0 - step);
        da_block_io io = diffattn::block_io(hw.dl(), ew.dl());
        da_block_io cio;
        da_block_io_init(&cio, sizeof cio);
        cio.hidden_states = hc.dl();
        cio.encoder_hidden_states = ec.dl();
        for (std::size_t i = 0; i < blocks.size(); ++i) {
            const float add = (step == 0 ? 1.0f : 1.02f) * static_cast<float>(i + 1);
            if (model.module_begin(blocks[i], io)) {
                decisions += 'C';
                for (float &value : hw.values()) value += add;
                model.module_end(blocks[i], io);
            } else {
                decisions += 'S';
            }
            int32_t run = 0;
            da_model_module_begin(twin, blocks[i].c_str(), &cio, &run);
            cdecisions += run ? 'C' : 'S';
            if (run) {
                for (float &value : hc.values()) value += add;
                da_model_module_end(twin, blocks[i].c_str(), &cio);
            }
        }
        s.done();
        da_model_end_step(twin);
        CHECK(hw.values() == hc.values() && ew.values() == ec.values(), "block protocol outputs = C");
    }
    CHECK(decisions == cdecisions && decisions.find('S') != std::string::npos, decisions + " vs " + cdecisions);
    expect_error(__LINE__, DA_ERR_VALUE, [&] { model.enable_cache(fbc); });
    model.disable_cache();
    CHECK(model.enabled_cache() == DA_CACHE_NONE, "disable_cache");

    // pyramid attention broadcast with a timestep lambda
    int calls = 0;
    da_pab_config pab = diffattn::defaults<da_pab_config>();
    int64_t hooked = model.apply_pyramid_attention_broadcast(pab, [&calls] { ++calls; return 500.0; });
    int64_t chooked = 0;
    da_model_apply_pyramid_attention_broadcast(twin, &pab, &chooked);
    CHECK(hooked > 0 && hooked == chooked, "PAB hooked " + std::to_string(hooked) + " = C " + std::to_string(chooked));
    {
        auto step = model.step(500.0);
        a.forward(diffattn::ForwardArgs(h.dl()).encoder_hidden_states(e.dl()));
        step.done();
    }
    CHECK(calls >= 1, "the timestep lambda was called");

    // a pipeline keeps the model (and its callbacks) alive
    diffattn::Pipeline pipeline;
    pipeline.add("transformer", model);
    expect_error(__LINE__, DA_ERR_VALUE, [&] { pipeline.add("transformer", model); });
    diffattn::Model moved = std::move(model);
    CHECK(!model.handle() && moved.handle(), "models move");
    da_model_destroy(twin);
}

}  // namespace

int main() {
    try {
        diffattn::check_abi();
        std::vector<int32_t> kinds = diffattn::processor_kinds();
        CHECK(static_cast<int64_t>(kinds.size()) == da_processor_kind_count() && kinds[0] == DA_PROCESSOR_ATTN_PROCESSOR,
              "processor_kinds = C list");
        int32_t family = -1;
        da_processor_family(DA_PROCESSOR_FLUX_ATTN_PROCESSOR, &family);
        CHECK(diffattn::processor_family(DA_PROCESSOR_FLUX_ATTN_PROCESSOR) == family, "processor_family");
        CHECK(diffattn::struct_size("da_attention_info") == sizeof(da_attention_info), "struct_size");
        test_attention_and_errors();
        test_sdpa_and_rotary();
        test_hooks();
        test_model_pipeline_caches();
    } catch (const std::exception &e) {
        record(false, __LINE__, std::string("unexpected exception: ") + e.what());
    }
    std::printf("cpp-wrapper: %d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
