// diffattn/attention.hpp — diffusers' Attention module: owned (Attention) or borrowed from a model
// (AttentionRef), forward arguments with DiT keywords, caller-owned or library-allocated outputs.
// Part of the C++17 wrapper; include <diffattn.hpp>.
#ifndef DIFFATTN_ATTENTION_HPP
#define DIFFATTN_ATTENTION_HPP

#include "core.hpp"
#include "hooks.hpp"

namespace diffattn {

// diffusers' defaults (da_attention_config_init) with the three sizes most callers set.
inline da_attention_config attention_config(int64_t query_dim, int64_t heads = 8, int64_t dim_head = 64) {
    da_attention_config config = defaults<da_attention_config>();
    config.query_dim = query_dim;
    config.heads = heads;
    config.dim_head = dim_head;
    return config;
}

struct WeightInfo {
    std::string name;
    std::vector<int64_t> shape;
};

// The arguments of Attention.forward (da_forward_args) with the DiT keywords (da_dit_args) beside
// them. Tensors are borrowed: they must outlive the forward. Copyable; get() links the two structs.
class ForwardArgs {
public:
    explicit ForwardArgs(const DLTensor *hidden_states = nullptr)
        : args_(defaults<da_forward_args>()), dit_(defaults<da_dit_args>()) {
        args_.hidden_states = hidden_states;
    }
    ForwardArgs &hidden_states(const DLTensor *t) { return args_.hidden_states = t, *this; }
    ForwardArgs &encoder_hidden_states(const DLTensor *t) { return args_.encoder_hidden_states = t, *this; }
    ForwardArgs &attention_mask(const DLTensor *t) { return args_.attention_mask = t, *this; }
    ForwardArgs &temb(const DLTensor *t) { return args_.temb = t, *this; }
    // IP-Adapter image embeddings (diffusers' tuple form); masks: one per adapter, nullptr = None.
    ForwardArgs &ip_hidden_states(std::vector<DLTensor> tensors) {
        ip_ = std::move(tensors);
        args_.ip_hidden_states_given = 1;
        return *this;
    }
    ForwardArgs &ip_adapter_masks(std::vector<const DLTensor *> masks) {
        ip_masks_ = std::move(masks);
        has_ip_masks_ = true;
        return *this;
    }
    // The DiT keywords (rotary tables, Allegro/Lumina embeddings): edit in place.
    da_dit_args &dit() {
        has_dit_ = true;
        return dit_;
    }
    ForwardArgs &rotary(const DLTensor *cos, const DLTensor *sin) {
        dit().rotary_cos = cos;
        dit_.rotary_sin = sin;
        return *this;
    }

    // The C struct, pointing into this object: valid while it lives unchanged.
    const da_forward_args *get() const {
        args_.num_ip_hidden_states = static_cast<int32_t>(ip_.size());
        args_.ip_hidden_states = ip_.empty() ? nullptr : ip_.data();
        args_.num_ip_adapter_masks = static_cast<int32_t>(ip_masks_.size());
        args_.ip_adapter_masks = has_ip_masks_ ? ip_masks_.data() : nullptr;
        args_.dit = has_dit_ ? &dit_ : nullptr;
        return &args_;
    }

private:
    mutable da_forward_args args_;
    da_dit_args dit_;
    bool has_dit_ = false, has_ip_masks_ = false;
    std::vector<DLTensor> ip_;
    std::vector<const DLTensor *> ip_masks_;
};

// Every da_attention_* call on a handle it does not own: a module borrowed from a Model (valid while
// the model lives) or the base of Attention. Copyable.
class AttentionRef {
public:
    explicit AttentionRef(da_attention handle = nullptr) noexcept : handle_(handle) {}
    da_attention handle() const noexcept { return handle_; }
    explicit operator bool() const noexcept { return handle_ != nullptr; }

    da_attention_config config() const {
        da_attention_config config = defaults<da_attention_config>();
        check(da_attention_get_config(handle_, &config));
        return config;
    }
    da_attention_info info() const {
        da_attention_info info = sized<da_attention_info>();
        check(da_attention_get_info(handle_, &info));
        return info;
    }

    // ---- processor
    void set_processor(const da_processor_config &processor) { check(da_attention_set_processor(handle_, &processor)); }
    // set_processor(kind[, slice_size]): a DA_PROCESSOR_* value with its defaults.
    void set_processor(int32_t kind, std::optional<int64_t> slice_size = std::nullopt) {
        da_processor_config processor = diffattn::processor_config(kind);
        if (slice_size) processor.slice_size = *slice_size;
        set_processor(processor);
    }
    da_processor_config processor_config() const {
        da_processor_config processor = sized<da_processor_config>();
        check(da_attention_get_processor(handle_, &processor));
        return processor;
    }
    int32_t processor() const { return processor_config().kind; }
    void update_processor(const da_processor_config &processor) {
        check(da_attention_update_processor(handle_, &processor));
    }
    // The IP-Adapter scale values and per-adapter counts (0 = one value), as da_processor_config holds them.
    std::pair<std::vector<double>, std::vector<int32_t>> ip_adapter_scale(int32_t num_adapters) const {
        int64_t n = 0;
        check(da_attention_get_ip_adapter_scale(handle_, nullptr, 0, nullptr, 0, &n));
        std::vector<double> scales(static_cast<std::size_t>(n));
        std::vector<int32_t> counts(static_cast<std::size_t>(num_adapters));
        check(da_attention_get_ip_adapter_scale(handle_, scales.data(), n, counts.data(), num_adapters, &n));
        return {scales, counts};
    }

    // ---- switches
    void set_attention_slice(int64_t slice_size) { check(da_attention_set_attention_slice(handle_, slice_size)); }
    void set_use_memory_efficient_attention_xformers(bool use) {
        check(da_attention_set_use_memory_efficient_attention_xformers(handle_, use ? 1 : 0));
    }
    void set_use_npu_flash_attention(bool use) { check(da_attention_set_use_npu_flash_attention(handle_, use ? 1 : 0)); }
    void set_use_xla_flash_attention(bool use, bool is_flux = false) {
        check(da_attention_set_use_xla_flash_attention(handle_, use ? 1 : 0, is_flux ? 1 : 0));
    }
    void fuse_projections(bool fuse = true) { check(da_attention_fuse_projections(handle_, fuse ? 1 : 0)); }
    void unfuse_projections() { check(da_attention_unfuse_projections(handle_)); }
    // storage DA_STORAGE_*; skip_patterns std::nullopt = diffusers' defaults.
    void enable_layerwise_casting(int32_t storage, const std::optional<std::vector<std::string>> &skip_patterns = {}) {
        detail::CStrings patterns(skip_patterns.value_or(std::vector<std::string>{}));
        check(da_attention_enable_layerwise_casting(handle_, storage, skip_patterns ? patterns.data() : nullptr,
                                                    patterns.size()));
    }

    // ---- weights (the state dict, diffusers' names and order)
    std::vector<WeightInfo> weights() const {
        int64_t count = 0;
        check(da_attention_weight_count(handle_, &count));
        std::vector<WeightInfo> result;
        for (int64_t i = 0; i < count; ++i) {
            da_weight_info info = sized<da_weight_info>();
            check(da_attention_weight_info(handle_, i, &info));
            result.push_back({info.name, std::vector<int64_t>(info.shape, info.shape + info.ndim)});
        }
        return result;
    }
    void set_weight(const std::string &name, const DLTensor *value) {
        check(da_attention_set_weight(handle_, name.c_str(), value));
    }
    void set_weight(const std::string &name, const Tensor<float> &value) { set_weight(name, value.dl()); }
    void get_weight(const std::string &name, DLTensor *out) const {
        check(da_attention_get_weight(handle_, name.c_str(), out));
    }
    Tensor<float> weight(const std::string &name) const {
        for (const WeightInfo &w : weights()) {
            if (w.name != name) continue;
            Tensor<float> out(w.shape);
            get_weight(name, out.dl());
            return out;
        }
        throw Error(DA_ERR_NOT_FOUND, "no weight named '" + name + "'");
    }

    // ---- forward
    da_output_shapes output_shapes(const ForwardArgs &args) const {
        da_output_shapes shapes = sized<da_output_shapes>();
        check(da_attention_output_shapes(handle_, args.get(), &shapes));
        return shapes;
    }
    // Into the caller's tensors (float32, shapes as output_shapes reports, any strides).
    void forward(const ForwardArgs &args, DLTensor *outputs, int32_t num_outputs) const {
        check(da_attention_forward(handle_, args.get(), outputs, num_outputs));
    }
    // Into new compact tensors: one for classic processors, two for joint ones.
    std::vector<Tensor<float>> forward(const ForwardArgs &args) const {
        da_output_shapes shapes = output_shapes(args);
        std::vector<Tensor<float>> outputs;
        std::vector<DLTensor> views;
        for (int32_t i = 0; i < shapes.count; ++i)
            outputs.emplace_back(std::vector<int64_t>(shapes.shape[i], shapes.shape[i] + shapes.ndim[i]));
        for (Tensor<float> &out : outputs) views.push_back(*out.dl());
        forward(args, views.data(), shapes.count);
        return outputs;
    }
    std::vector<Tensor<float>> forward(const DLTensor *hidden_states, const DLTensor *encoder_hidden_states = nullptr,
                                       const DLTensor *attention_mask = nullptr, const DLTensor *temb = nullptr) const {
        return forward(ForwardArgs(hidden_states).encoder_hidden_states(encoder_hidden_states)
                           .attention_mask(attention_mask).temb(temb));
    }
    std::vector<Tensor<float>> forward(const Tensor<float> &hidden_states) const { return forward(hidden_states.dl()); }
    // Into tensors the library allocates.
    std::vector<ManagedTensor> forward_alloc(const ForwardArgs &args) const {
        DLManagedTensor *raw[DA_MAX_OUTPUTS] = {};
        int32_t n = 0;
        check(da_attention_forward_alloc(handle_, args.get(), raw, DA_MAX_OUTPUTS, &n));
        std::vector<ManagedTensor> outputs;
        for (int32_t i = 0; i < n; ++i) outputs.emplace_back(raw[i]);
        return outputs;
    }

    // ---- the module's helper methods, as in diffusers
    ManagedTensor prepare_attention_mask(const DLTensor *mask, int64_t target_length, int64_t batch_size,
                                         int32_t out_dim = 3) const {
        return managed(da_attention_prepare_attention_mask, mask, target_length, batch_size, out_dim);
    }
    ManagedTensor head_to_batch_dim(const DLTensor *tensor, int32_t out_dim = 3) const {
        return managed(da_attention_head_to_batch_dim, tensor, out_dim);
    }
    ManagedTensor batch_to_head_dim(const DLTensor *tensor) const { return managed(da_attention_batch_to_head_dim, tensor); }
    ManagedTensor get_attention_scores(const DLTensor *query, const DLTensor *key,
                                       const DLTensor *attention_mask = nullptr) const {
        return managed(da_attention_get_attention_scores, query, key, attention_mask);
    }
    ManagedTensor norm_encoder_hidden_states(const DLTensor *encoder_hidden_states) const {
        return managed(da_attention_norm_encoder_hidden_states, encoder_hidden_states);
    }

    // ---- hooks (a borrowed module shares its model's registry)
    HookRegistry hook_registry() const { return HookRegistry(detail::create<da_hook_registry>(da_attention_hook_registry, handle_)); }

protected:
    da_attention handle_;

private:
    template <class F, class... Args> ManagedTensor managed(F fn, Args... args) const {
        DLManagedTensor *out = nullptr;
        check(fn(handle_, args..., &out));
        return ManagedTensor(out);
    }
};

// diffusers.models.attention_processor.Attention, owned: move-only, destroyed with the object.
class Attention : public AttentionRef {
public:
    explicit Attention(const da_attention_config &config)
        : AttentionRef(detail::create<da_attention>(da_attention_create, &config)) {}
    Attention(const Attention &) = delete;
    Attention &operator=(const Attention &) = delete;
    Attention(Attention &&other) noexcept : AttentionRef(std::exchange(other.handle_, nullptr)) {}
    Attention &operator=(Attention &&other) noexcept {
        if (this != &other) da_attention_destroy(std::exchange(handle_, std::exchange(other.handle_, nullptr)));
        return *this;
    }
    ~Attention() { da_attention_destroy(handle_); }
};

}  // namespace diffattn

#endif  // DIFFATTN_ATTENTION_HPP
