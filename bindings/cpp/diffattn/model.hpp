// diffattn/model.hpp — models (diffusers model classes as trees of named modules), pipelines,
// denoising steps, the block protocol, group offloading and the caches.
// Part of the C++17 wrapper; include <diffattn.hpp>.
#ifndef DIFFATTN_MODEL_HPP
#define DIFFATTN_MODEL_HPP

#include "attention.hpp"
#include "core.hpp"
#include "hooks.hpp"

#include <map>
#include <type_traits>

namespace diffattn {

// The DA_CACHE_* kind of each cache config struct, for Model::enable_cache; a new cache is one line.
template <class T> struct cache_kind;
template <> struct cache_kind<da_faster_cache_config> { static constexpr int32_t value = DA_CACHE_FASTER; };
template <> struct cache_kind<da_first_block_cache_config> { static constexpr int32_t value = DA_CACHE_FIRST_BLOCK; };
template <> struct cache_kind<da_mag_cache_config> { static constexpr int32_t value = DA_CACHE_MAG; };
template <> struct cache_kind<da_pab_config> { static constexpr int32_t value = DA_CACHE_PYRAMID_ATTENTION; };
template <> struct cache_kind<da_taylorseer_cache_config> { static constexpr int32_t value = DA_CACHE_TAYLORSEER; };
template <> struct cache_kind<da_teacache_config> { static constexpr int32_t value = DA_CACHE_TEA; };

// The block protocol's in/out tensors (da_block_io): `hidden_states` and `encoder_hidden_states` are
// read and may be overwritten in place.
inline da_block_io block_io(DLTensor *hidden_states, DLTensor *encoder_hidden_states = nullptr,
                            const DLTensor *modulated_input = nullptr) {
    da_block_io io = defaults<da_block_io>();
    io.hidden_states = hidden_states;
    io.encoder_hidden_states = encoder_hidden_states;
    io.modulated_input = modulated_input;
    return io;
}

// A diffusers model (da_model) built from its class's config.json text. Move-only. Attention modules
// are borrowed as AttentionRef, valid while the model lives.
class Model {
public:
    Model(const std::string &class_name, const std::string &config_json)
        : keep_(std::make_shared<std::vector<std::shared_ptr<void>>>()),
          handle_(detail::create<da_model>(da_model_create, class_name.c_str(), config_json.c_str())) {}

    da_model handle() const noexcept { return handle_.get(); }
    std::string class_name() const {
        const char *name = nullptr;
        check(da_model_class_name(handle(), &name));
        return name;
    }

    // ---- attn_processors and the model-wide switches
    std::vector<std::string> attn_processor_names() const {
        return detail::list(handle(), da_model_attn_processor_count, da_model_attn_processor_name);
    }
    da_processor_config attn_processor(const std::string &name) const {
        da_processor_config processor = sized<da_processor_config>();
        check(da_model_attn_processor_get(handle(), name.c_str(), &processor));
        return processor;
    }
    void set_attn_processor(const da_processor_config &processor) {
        check(da_model_set_attn_processor(handle(), &processor));
    }
    void set_attn_processor(int32_t kind) { set_attn_processor(processor_config(kind)); }
    // set_attn_processor({name: processor}) for every module.
    void set_attn_processors(const std::map<std::string, da_processor_config> &processors) {
        std::vector<const char *> names;
        std::vector<da_processor_config> values;
        for (const auto &entry : processors) {
            names.push_back(entry.first.c_str());
            values.push_back(entry.second);
        }
        check(da_model_set_attn_processors(handle(), names.data(), values.data(), static_cast<int64_t>(values.size())));
    }
    void set_default_attn_processor() { check(da_model_set_default_attn_processor(handle())); }
    void fuse_qkv_projections() { check(da_model_fuse_qkv_projections(handle())); }
    void unfuse_qkv_projections() { check(da_model_unfuse_qkv_projections(handle())); }
    void set_use_memory_efficient_attention_xformers(bool valid) {
        check(da_model_set_use_memory_efficient_attention_xformers(handle(), valid ? 1 : 0));
    }
    // mode DA_SLICE_*; sizes for DA_SLICE_SIZE (one) and DA_SLICE_LIST (one per module).
    void set_attention_slice(int32_t mode, const std::vector<int64_t> &sizes = {}) {
        check(da_model_set_attention_slice(handle(), mode, sizes.empty() ? nullptr : sizes.data(),
                                           static_cast<int64_t>(sizes.size())));
    }
    void enable_layerwise_casting(int32_t storage, const std::optional<std::vector<std::string>> &skip_patterns = {}) {
        detail::CStrings patterns(skip_patterns.value_or(std::vector<std::string>{}));
        check(da_model_enable_layerwise_casting(handle(), storage, skip_patterns ? patterns.data() : nullptr,
                                                patterns.size()));
    }

    // ---- modules
    AttentionRef attention(const std::string &path) const {
        return AttentionRef(detail::create<da_attention>(da_model_get_attention, handle(), path.c_str()));
    }
    std::vector<std::string> module_paths(int32_t kind) const {
        int64_t count = 0;
        check(da_model_module_count(handle(), kind, &count));
        std::vector<std::string> out;
        for (int64_t i = 0; i < count; ++i) {
            const char *path = nullptr;
            check(da_model_module_path(handle(), kind, i, &path));
            out.emplace_back(path);
        }
        return out;
    }
    std::string module_class(const std::string &path) const {
        const char *name = nullptr;
        check(da_model_module_class(handle(), path.c_str(), &name));
        return name;
    }

    // ---- weights
    da_load_report load_safetensors(const std::string &path, int32_t flags = 0) {
        da_load_report report = sized<da_load_report>();
        check(da_model_load_safetensors(handle(), path.c_str(), flags, &report));
        return report;
    }
    da_load_report load_state_dict(const std::vector<std::pair<std::string, const DLTensor *>> &state_dict,
                                   int32_t flags = 0) {
        std::vector<const char *> names;
        std::vector<DLTensor> tensors;
        for (const auto &entry : state_dict) {
            names.push_back(entry.first.c_str());
            tensors.push_back(*entry.second);
        }
        da_load_report report = sized<da_load_report>();
        check(da_model_load_state_dict(handle(), names.data(), tensors.data(), static_cast<int64_t>(tensors.size()),
                                       flags, &report));
        return report;
    }
    std::vector<WeightInfo> weights() const {
        int64_t count = 0;
        check(da_model_weight_count(handle(), &count));
        std::vector<WeightInfo> result;
        for (int64_t i = 0; i < count; ++i) {
            da_weight_info info = sized<da_weight_info>();
            check(da_model_weight_info(handle(), i, &info));
            result.push_back({info.name, std::vector<int64_t>(info.shape, info.shape + info.ndim)});
        }
        return result;
    }
    void get_weight(const std::string &name, DLTensor *out) const {
        check(da_model_get_weight(handle(), name.c_str(), out));
    }

    // ---- hooks, steps and the block protocol
    HookRegistry hook_registry(const std::string &path = "") const {
        return HookRegistry(detail::create<da_hook_registry>(da_model_hook_registry, handle(), path.c_str()));
    }
    void begin_step(double timestep) { check(da_model_begin_step(handle(), timestep)); }
    void end_step() { check(da_model_end_step(handle())); }

    // One denoising step: begin_step now, end_step by done() (which throws) or, if an exception
    // left the step early, by the destructor (errors then ignored).
    class Step {
    public:
        Step(Model &model, double timestep) : model_(model.handle()) { model.begin_step(timestep); }
        Step(const Step &) = delete;
        Step &operator=(const Step &) = delete;
        ~Step() {
            if (open_) da_model_end_step(model_);
        }
        void done() {
            open_ = false;
            check(da_model_end_step(model_));
        }

    private:
        da_model model_;
        bool open_ = true;
    };
    Step step(double timestep) { return Step(*this, timestep); }

    std::vector<std::string> transformer_block_paths() const {
        return detail::list(handle(), da_model_transformer_block_count, da_model_transformer_block_path);
    }
    // true: run the module, then call module_end; false: skipped, `io` holds its output.
    bool module_begin(const std::string &path, da_block_io &io) {
        int32_t run = 0;
        check(da_model_module_begin(handle(), path.c_str(), &io, &run));
        return run != 0;
    }
    void module_end(const std::string &path, da_block_io &io) { check(da_model_module_end(handle(), path.c_str(), &io)); }
    void set_cache_context(const std::optional<std::string> &name) {
        check(da_model_set_cache_context(handle(), name ? name->c_str() : nullptr));
    }

    // ---- group offloading
    void enable_group_offload(const da_group_offload_config &config, const std::string &onload_device = "cpu") {
        check(da_model_enable_group_offload(handle(), onload_device.c_str(), &config));
    }
    void disable_group_offload() { check(da_model_disable_group_offload(handle())); }
    da_group_offload_stats group_offload_stats() const {
        da_group_offload_stats stats = sized<da_group_offload_stats>();
        check(da_model_group_offload_stats(handle(), &stats));
        return stats;
    }

    // ---- caches: apply_* return the number of modules hooked
    int64_t apply_pyramid_attention_broadcast(da_pab_config config, TimestepFunction timestep = {}) {
        with_callbacks(config, std::move(timestep));
        return hooked(da_model_apply_pyramid_attention_broadcast, &config);
    }
    int64_t apply_faster_cache(da_faster_cache_config config, TimestepFunction timestep = {},
                               AttentionWeightFunction attention_weight = {}) {
        with_callbacks(config, std::move(timestep), std::move(attention_weight));
        return hooked(da_model_apply_faster_cache, &config);
    }
    int64_t apply_first_block_cache(const da_first_block_cache_config &config) {
        return hooked(da_model_apply_first_block_cache, &config);
    }
    int64_t apply_taylorseer_cache(const da_taylorseer_cache_config &config) {
        return hooked(da_model_apply_taylorseer_cache, &config);
    }
    int64_t apply_mag_cache(const da_mag_cache_config &config) { return hooked(da_model_apply_mag_cache, &config); }
    int64_t apply_teacache(const da_teacache_config &config) { return hooked(da_model_apply_teacache, &config); }
    int64_t apply_layer_skip(const da_layer_skip_config &config) { return hooked(da_model_apply_layer_skip, &config); }

    // CacheMixin.enable_cache with any cache config struct (cache_kind names its DA_CACHE_* kind).
    template <class Config> void enable_cache(const Config &config) {
        check(da_model_enable_cache(handle(), cache_kind<Config>::value, &config));
    }
    void enable_cache(da_pab_config config, TimestepFunction timestep) {
        with_callbacks(config, std::move(timestep));
        enable_cache<da_pab_config>(config);
    }
    void enable_cache(da_faster_cache_config config, TimestepFunction timestep,
                      AttentionWeightFunction attention_weight = {}) {
        with_callbacks(config, std::move(timestep), std::move(attention_weight));
        enable_cache<da_faster_cache_config>(config);
    }
    void disable_cache() { check(da_model_disable_cache(handle())); }
    int32_t enabled_cache() const {
        int32_t kind = DA_CACHE_NONE;
        check(da_model_enabled_cache(handle(), &kind));
        return kind;
    }

    bool faster_cache_skips_unconditional() const {
        int32_t skip = 0;
        check(da_model_faster_cache_skips_unconditional(handle(), &skip));
        return skip != 0;
    }
    void faster_cache_denoiser_output(const DLTensor *output, DLTensor *full_output) {
        check(da_model_faster_cache_denoiser_output(handle(), output, full_output));
    }
    std::vector<double> mag_cache_calibration() const {
        int64_t count = 0;
        check(da_model_mag_cache_calibration(handle(), nullptr, 0, &count));
        std::vector<double> ratios(static_cast<std::size_t>(count));
        check(da_model_mag_cache_calibration(handle(), ratios.data(), count, &count));
        return ratios;
    }

private:
    friend class Pipeline;

    template <class F, class Config> int64_t hooked(F fn, const Config *config) {
        int64_t n = 0;
        check(fn(handle(), config, &n));
        return n;
    }
    // Points the config's callbacks at C++ callables kept alive as long as the C model can call them.
    template <class Config>
    void with_callbacks(Config &config, TimestepFunction timestep, AttentionWeightFunction attention_weight = {}) {
        if (!timestep && !attention_weight) return;
        auto callbacks = std::make_shared<detail::CacheCallbacks>();
        callbacks->timestep = std::move(timestep);
        callbacks->attention_weight = std::move(attention_weight);
        if (callbacks->timestep) config.current_timestep_callback = &detail::CacheCallbacks::timestep_callback;
        if constexpr (std::is_same_v<Config, da_faster_cache_config>) {
            if (callbacks->attention_weight)
                config.attention_weight_callback = &detail::CacheCallbacks::weight_callback;
        }
        config.callback_user_data = callbacks.get();
        keep_->push_back(callbacks);
    }

    detail::KeepAlive keep_;  // declared first: destroyed after the handle
    UniqueHandle<da_model, da_model_destroy> handle_;
};

// A named set of models with diffusers' pipeline-level switches (da_pipeline). Move-only; keeps
// the models it holds alive (and their callbacks) after the Model objects are gone.
class Pipeline {
public:
    Pipeline() : handle_(detail::create<da_pipeline>(da_pipeline_create)) {}
    da_pipeline handle() const noexcept { return handle_.get(); }

    void add(const std::string &name, const Model &model) {
        check(da_pipeline_add(handle(), name.c_str(), model.handle()));
        keep_.push_back(model.keep_);
    }
    void fuse_qkv_projections(bool unet = true, bool vae = true) {
        check(da_pipeline_fuse_qkv_projections(handle(), unet ? 1 : 0, vae ? 1 : 0));
    }
    void unfuse_qkv_projections(bool unet = true, bool vae = true) {
        check(da_pipeline_unfuse_qkv_projections(handle(), unet ? 1 : 0, vae ? 1 : 0));
    }
    void set_attention_slicing(int32_t mode, const std::vector<int64_t> &sizes = {}) {
        check(da_pipeline_set_attention_slicing(handle(), mode, sizes.empty() ? nullptr : sizes.data(),
                                                static_cast<int64_t>(sizes.size())));
    }
    void set_use_memory_efficient_attention_xformers(bool valid) {
        check(da_pipeline_set_use_memory_efficient_attention_xformers(handle(), valid ? 1 : 0));
    }

private:
    std::vector<detail::KeepAlive> keep_;  // declared first: destroyed after the handle
    UniqueHandle<da_pipeline, da_pipeline_destroy> handle_;
};

}  // namespace diffattn

#endif  // DIFFATTN_MODEL_HPP
