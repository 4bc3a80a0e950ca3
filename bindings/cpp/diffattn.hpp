// diffattn.hpp — header-only C++17 wrapper over the C API of libdiffattn (diffattn.h).
//
//   diffattn::Attention attn(diffattn::attention_config(320, /*heads=*/8, /*dim_head=*/40));
//   diffattn::Tensor<float> x({2, 1024, 320}, 0.1f);
//   std::vector<diffattn::Tensor<float>> out = attn.forward(x);   // throws diffattn::Error
//
// - Handles are move-only RAII objects: the destructor calls the matching da_*_destroy.
// - A failed call throws diffattn::Error, which carries the da_status and da_last_error()'s
//   message (copied at once: the C message is only valid until the next call on the thread).
// - Tensor<T> owns a std::vector<T> plus shape and strides and lends the library a DLTensor
//   (dl()) that points into it; the pointer is valid while the Tensor lives and is not resized.
// Thread safety is that of the C calls underneath (see diffattn.h).
// Link with: c++ -std=c++17 prog.cpp $(pkg-config --cflags --libs diffattn)
#ifndef DIFFATTN_HPP
#define DIFFATTN_HPP

#include <diffattn.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace diffattn {

// ---- Errors ----------------------------------------------------------------------------------

class Error : public std::runtime_error {
public:
    Error(da_status status, const std::string &message)
        : std::runtime_error(std::string(da_status_name(status)) + ": " + message), status_(status) {}
    da_status status() const noexcept { return status_; }

private:
    da_status status_;
};

inline void check(da_status status) {
    if (status != DA_OK) throw Error(status, da_last_error());
}

// ---- Library ---------------------------------------------------------------------------------

inline std::string version() { return da_version(); }

// Throws when the loaded library cannot serve code compiled against this header.
inline void check_abi() { check(da_check_abi(DA_ABI_VERSION)); }

inline void set_num_threads(int32_t threads) { check(da_set_num_threads(threads)); }
inline int32_t num_threads() { return da_get_num_threads(); }

// ---- Processors ------------------------------------------------------------------------------

// diffusers' class name of a DA_PROCESSOR_* kind; throws for an unknown kind.
inline std::string processor_name(int32_t kind) {
    const char *name = da_processor_name(kind);
    if (!name) throw Error(DA_ERR_NOT_FOUND, "unknown processor kind " + std::to_string(kind));
    return name;
}

inline int32_t processor_kind(const std::string &class_name) {
    int32_t kind = 0;
    check(da_processor_kind_from_name(class_name.c_str(), &kind));
    return kind;
}

inline bool processor_is_implemented(int32_t kind) { return da_processor_is_implemented(kind) != 0; }

// ---- Tensors ---------------------------------------------------------------------------------

template <class T> struct dl_dtype;
template <> struct dl_dtype<float> { static constexpr DLDataType value{kDLFloat, 32, 1}; };
template <> struct dl_dtype<uint8_t> { static constexpr DLDataType value{kDLUInt, 8, 1}; };  // boolean masks

// A compact row-major tensor in a std::vector. Copyable and movable; dl() is recomputed on each
// call, so it stays right after a move.
template <class T> class Tensor {
public:
    Tensor() = default;
    explicit Tensor(std::vector<int64_t> shape, T fill = T{})
        : shape_(std::move(shape)), data_(element_count(shape_), fill) {}
    Tensor(std::vector<int64_t> shape, std::vector<T> values) : shape_(std::move(shape)), data_(std::move(values)) {
        if (data_.size() != element_count(shape_))
            throw Error(DA_ERR_SHAPE, "Tensor: " + std::to_string(data_.size()) + " values for a shape of " +
                                          std::to_string(element_count(shape_)) + " elements");
    }

    const std::vector<int64_t> &shape() const noexcept { return shape_; }
    std::vector<T> &values() noexcept { return data_; }
    const std::vector<T> &values() const noexcept { return data_; }
    T *data() noexcept { return data_.data(); }
    const T *data() const noexcept { return data_.data(); }
    std::size_t size() const noexcept { return data_.size(); }
    T &operator[](std::size_t i) { return data_[i]; }
    const T &operator[](std::size_t i) const { return data_[i]; }

    // The DLTensor the C API reads or writes: points into this object (NULL strides = row-major).
    DLTensor *dl() { return fill_view(); }
    const DLTensor *dl() const { return fill_view(); }

    static std::size_t element_count(const std::vector<int64_t> &shape) {
        std::size_t n = 1;
        for (int64_t d : shape) {
            if (d < 0) throw Error(DA_ERR_SHAPE, "Tensor: negative dimension " + std::to_string(d));
            n *= static_cast<std::size_t>(d);
        }
        return n;
    }

private:
    DLTensor *fill_view() const {
        view_.data = data_.empty() ? nullptr : const_cast<T *>(data_.data());
        view_.device = DLDevice{kDLCPU, 0};
        view_.ndim = static_cast<int32_t>(shape_.size());
        view_.dtype = dl_dtype<T>::value;
        view_.shape = const_cast<int64_t *>(shape_.data());
        view_.strides = nullptr;
        view_.byte_offset = 0;
        return &view_;
    }

    std::vector<int64_t> shape_;
    std::vector<T> data_;
    mutable DLTensor view_{};
};

// A tensor allocated by the library (the *_alloc and helper calls); freed with da_tensor_free.
class ManagedTensor {
public:
    ManagedTensor() = default;
    explicit ManagedTensor(DLManagedTensor *tensor) : ptr_(tensor) {}
    DLManagedTensor *get() const noexcept { return ptr_.get(); }
    DLManagedTensor *release() noexcept { return ptr_.release(); }
    explicit operator bool() const noexcept { return static_cast<bool>(ptr_); }

    // A float32 copy as a compact Tensor (honours the library tensor's strides).
    Tensor<float> to_tensor() const {
        if (!ptr_) throw Error(DA_ERR_INVALID_ARGUMENT, "ManagedTensor: empty");
        const DLTensor &t = ptr_->dl_tensor;
        if (t.dtype.code != kDLFloat || t.dtype.bits != 32)
            throw Error(DA_ERR_DTYPE, "ManagedTensor::to_tensor: not a float32 tensor");
        Tensor<float> out(std::vector<int64_t>(t.shape, t.shape + t.ndim));
        const float *base = reinterpret_cast<const float *>(static_cast<const char *>(t.data) + t.byte_offset);
        const std::size_t ndim = static_cast<std::size_t>(t.ndim);
        std::vector<int64_t> index(ndim, 0);
        for (std::size_t i = 0; i < out.size(); ++i) {
            int64_t offset = 0;
            for (std::size_t d = 0; d < ndim; ++d) offset += index[d] * stride(t, d);
            out[i] = base[offset];
            for (std::size_t d = ndim; d-- > 0;) {  // next index, last axis fastest
                if (++index[d] < t.shape[d]) break;
                index[d] = 0;
            }
        }
        return out;
    }

private:
    static int64_t stride(const DLTensor &t, std::size_t axis) {
        if (t.strides) return t.strides[axis];
        int64_t stride = 1;  // NULL strides: compact row-major
        for (std::size_t d = axis + 1; d < static_cast<std::size_t>(t.ndim); ++d) stride *= t.shape[d];
        return stride;
    }
    struct Free {
        void operator()(DLManagedTensor *t) const noexcept { da_tensor_free(t); }
    };
    std::unique_ptr<DLManagedTensor, Free> ptr_;
};

// ---- Handles ---------------------------------------------------------------------------------

// A move-only owner of a C handle H destroyed by Destroy (which accepts NULL).
template <class H, void (*Destroy)(H)> class UniqueHandle {
public:
    UniqueHandle() = default;
    explicit UniqueHandle(H handle) noexcept : handle_(handle) {}
    UniqueHandle(const UniqueHandle &) = delete;
    UniqueHandle &operator=(const UniqueHandle &) = delete;
    UniqueHandle(UniqueHandle &&other) noexcept : handle_(std::exchange(other.handle_, H{})) {}
    UniqueHandle &operator=(UniqueHandle &&other) noexcept {
        if (this != &other) reset(std::exchange(other.handle_, H{}));
        return *this;
    }
    ~UniqueHandle() { Destroy(handle_); }

    H get() const noexcept { return handle_; }
    H release() noexcept { return std::exchange(handle_, H{}); }
    void reset(H handle = H{}) noexcept { Destroy(std::exchange(handle_, handle)); }
    explicit operator bool() const noexcept { return handle_ != H{}; }

private:
    H handle_{};
};

// ---- Attention -------------------------------------------------------------------------------

// diffusers' defaults (da_attention_config_init) with the three sizes most callers set.
inline da_attention_config attention_config(int64_t query_dim, int64_t heads = 8, int64_t dim_head = 64) {
    da_attention_config config;
    check(da_attention_config_init(&config, sizeof config));
    config.query_dim = query_dim;
    config.heads = heads;
    config.dim_head = dim_head;
    return config;
}

struct WeightInfo {
    std::string name;
    std::vector<int64_t> shape;
};

// diffusers.models.attention_processor.Attention. Move-only.
class Attention {
public:
    explicit Attention(const da_attention_config &config) {
        da_attention handle = nullptr;
        check(da_attention_create(&config, &handle));
        handle_.reset(handle);
    }

    da_attention handle() const noexcept { return handle_.get(); }

    da_attention_config config() const {
        da_attention_config config;
        check(da_attention_config_init(&config, sizeof config));
        check(da_attention_get_config(handle(), &config));
        return config;
    }

    da_attention_info info() const {
        da_attention_info info{};
        info.struct_size = sizeof info;
        check(da_attention_get_info(handle(), &info));
        return info;
    }

    // set_processor(kind[, slice_size]): a DA_PROCESSOR_* value, e.g. DA_PROCESSOR_ATTN_PROCESSOR.
    void set_processor(int32_t kind, std::optional<int64_t> slice_size = std::nullopt) {
        da_processor_config processor;
        check(da_processor_config_init(&processor, sizeof processor, kind));
        if (slice_size) processor.slice_size = *slice_size;
        check(da_attention_set_processor(handle(), &processor));
    }

    int32_t processor() const {
        da_processor_config processor{};
        processor.struct_size = sizeof processor;
        check(da_attention_get_processor(handle(), &processor));
        return processor.kind;
    }

    // The state dict's names and shapes, in diffusers' order.
    std::vector<WeightInfo> weights() const {
        int64_t count = 0;
        check(da_attention_weight_count(handle(), &count));
        std::vector<WeightInfo> result;
        for (int64_t i = 0; i < count; ++i) {
            da_weight_info info{};
            info.struct_size = sizeof info;
            check(da_attention_weight_info(handle(), i, &info));
            result.push_back({info.name, std::vector<int64_t>(info.shape, info.shape + info.ndim)});
        }
        return result;
    }

    void set_weight(const std::string &name, const DLTensor *value) {
        check(da_attention_set_weight(handle(), name.c_str(), value));
    }
    void set_weight(const std::string &name, const Tensor<float> &value) { set_weight(name, value.dl()); }

    Tensor<float> weight(const std::string &name) const {
        for (const WeightInfo &w : weights()) {
            if (w.name != name) continue;
            Tensor<float> out(w.shape);
            check(da_attention_get_weight(handle(), name.c_str(), out.dl()));
            return out;
        }
        throw Error(DA_ERR_NOT_FOUND, "no weight named '" + name + "'");
    }

    // Attention.forward: one output for classic processors, two for joint ones. NULL means None.
    std::vector<Tensor<float>> forward(const DLTensor *hidden_states, const DLTensor *encoder_hidden_states = nullptr,
                                       const DLTensor *attention_mask = nullptr,
                                       const DLTensor *temb = nullptr) const {
        da_forward_args args;
        check(da_forward_args_init(&args, sizeof args));
        args.hidden_states = hidden_states;
        args.encoder_hidden_states = encoder_hidden_states;
        args.attention_mask = attention_mask;
        args.temb = temb;
        da_output_shapes shapes{};
        shapes.struct_size = sizeof shapes;
        check(da_attention_output_shapes(handle(), &args, &shapes));
        std::vector<Tensor<float>> outputs;
        std::vector<DLTensor> views;
        for (int32_t i = 0; i < shapes.count; ++i)
            outputs.emplace_back(std::vector<int64_t>(shapes.shape[i], shapes.shape[i] + shapes.ndim[i]));
        for (Tensor<float> &out : outputs) views.push_back(*out.dl());
        check(da_attention_forward(handle(), &args, views.data(), shapes.count));
        return outputs;
    }
    std::vector<Tensor<float>> forward(const Tensor<float> &hidden_states) const {
        return forward(hidden_states.dl());
    }

    // The module's helper methods, as in diffusers.
    ManagedTensor prepare_attention_mask(const DLTensor *mask, int64_t target_length, int64_t batch_size,
                                         int32_t out_dim = 3) const {
        DLManagedTensor *out = nullptr;
        check(da_attention_prepare_attention_mask(handle(), mask, target_length, batch_size, out_dim, &out));
        return ManagedTensor(out);
    }
    ManagedTensor head_to_batch_dim(const DLTensor *tensor, int32_t out_dim = 3) const {
        DLManagedTensor *out = nullptr;
        check(da_attention_head_to_batch_dim(handle(), tensor, out_dim, &out));
        return ManagedTensor(out);
    }
    ManagedTensor batch_to_head_dim(const DLTensor *tensor) const {
        DLManagedTensor *out = nullptr;
        check(da_attention_batch_to_head_dim(handle(), tensor, &out));
        return ManagedTensor(out);
    }
    ManagedTensor get_attention_scores(const DLTensor *query, const DLTensor *key,
                                       const DLTensor *attention_mask = nullptr) const {
        DLManagedTensor *out = nullptr;
        check(da_attention_get_attention_scores(handle(), query, key, attention_mask, &out));
        return ManagedTensor(out);
    }
    ManagedTensor norm_encoder_hidden_states(const DLTensor *encoder_hidden_states) const {
        DLManagedTensor *out = nullptr;
        check(da_attention_norm_encoder_hidden_states(handle(), encoder_hidden_states, &out));
        return ManagedTensor(out);
    }

private:
    UniqueHandle<da_attention, da_attention_destroy> handle_;
};

// ---- Scaled dot-product attention ------------------------------------------------------------

struct SDPAOptions {
    bool is_causal = false;
    std::optional<double> scale;  // default 1/sqrt(D)
    bool enable_gqa = false;
    int32_t algorithm = DA_SDPA_AUTO;
    int32_t precision = DA_PRECISION_DEFAULT; // DA_PRECISION_INT8: opt-in int8 attention
};

// torch.nn.functional.scaled_dot_product_attention into the caller's `out` (B, H, Nq, Dv); query,
// key and value all float32 or all bfloat16, `out` float32 or bfloat16.
inline void scaled_dot_product_attention(const DLTensor *query, const DLTensor *key, const DLTensor *value,
                                         const DLTensor *attn_mask, const SDPAOptions &options, DLTensor *out) {
    da_sdpa_options opts;
    check(da_sdpa_options_init(&opts, sizeof opts));
    opts.is_causal = options.is_causal;
    opts.enable_gqa = options.enable_gqa;
    opts.algorithm = options.algorithm;
    opts.precision = options.precision;
    if (options.scale) {
        opts.has_scale = 1;
        opts.scale = *options.scale;
    }
    check(da_scaled_dot_product_attention(query, key, value, attn_mask, &opts, out));
}

// As above, returning a new tensor of query's shape with value's last dimension.
inline Tensor<float> scaled_dot_product_attention(const Tensor<float> &query, const Tensor<float> &key,
                                                  const Tensor<float> &value, const DLTensor *attn_mask = nullptr,
                                                  const SDPAOptions &options = {}) {
    if (query.shape().empty() || value.shape().empty())
        throw Error(DA_ERR_SHAPE, "scaled_dot_product_attention: query and value need at least one dimension");
    std::vector<int64_t> shape = query.shape();
    shape.back() = value.shape().back();
    Tensor<float> out(shape);
    scaled_dot_product_attention(query.dl(), key.dl(), value.dl(), attn_mask, options, out.dl());
    return out;
}

}  // namespace diffattn

#endif  // DIFFATTN_HPP
