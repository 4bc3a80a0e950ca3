// diffattn/core.hpp — errors, config defaults, tensors, handles and the free functions of the C API.
// Part of the C++17 wrapper; include <diffattn.hpp>, which includes every part.
#ifndef DIFFATTN_CORE_HPP
#define DIFFATTN_CORE_HPP

#include <diffattn.h>

#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace diffattn {

// ---- Errors ----------------------------------------------------------------------------------

// A failed call: the da_status and da_last_error()'s message, copied at once (the C message is only
// valid until the next call on the thread).
class Error : public std::runtime_error {
public:
    Error(da_status status, const std::string &message)
        : std::runtime_error(std::string(da_status_name(status)) + ": " + message), status_(status),
          message_(message) {}
    da_status status() const noexcept { return status_; }
    // da_last_error()'s text without the status name.
    const std::string &message() const noexcept { return message_; }

private:
    da_status status_;
    std::string message_;
};

namespace detail {
// An exception thrown by a C++ callback (hook, timestep function) is caught before it reaches the
// library, kept here, and rethrown by check() on the same thread when the call it failed returns.
inline std::exception_ptr &pending_exception() {
    thread_local std::exception_ptr pending;
    return pending;
}
}  // namespace detail

// Throws for a failed status: the callback's own exception when a callback failed the call on this
// thread, else Error.
inline void check(da_status status) {
    std::exception_ptr pending = std::exchange(detail::pending_exception(), nullptr);
    if (status == DA_OK) return;
    if (pending) std::rethrow_exception(pending);
    throw Error(status, da_last_error());
}

// ---- Config structs: diffusers' defaults through the matching *_init ---------------------------

// defaults<T>() for every struct with a da_*_init(T *, size_t); a new struct is one line below.
template <class T> struct init_function;
#define DIFFATTN_INIT(T, fn) \
    template <> struct init_function<T> { static da_status call(T *p) { return fn(p, sizeof *p); } }
DIFFATTN_INIT(da_attention_config, da_attention_config_init);
DIFFATTN_INIT(da_forward_args, da_forward_args_init);
DIFFATTN_INIT(da_dit_args, da_dit_args_init);
DIFFATTN_INIT(da_sdpa_options, da_sdpa_options_init);
DIFFATTN_INIT(da_hook_callbacks, da_hook_callbacks_init);
DIFFATTN_INIT(da_group_offload_config, da_group_offload_config_init);
DIFFATTN_INIT(da_pab_config, da_pab_config_init);
DIFFATTN_INIT(da_block_io, da_block_io_init);
DIFFATTN_INIT(da_first_block_cache_config, da_first_block_cache_config_init);
DIFFATTN_INIT(da_faster_cache_config, da_faster_cache_config_init);
DIFFATTN_INIT(da_taylorseer_cache_config, da_taylorseer_cache_config_init);
DIFFATTN_INIT(da_mag_cache_config, da_mag_cache_config_init);
DIFFATTN_INIT(da_teacache_config, da_teacache_config_init);
DIFFATTN_INIT(da_layer_skip_config, da_layer_skip_config_init);
#undef DIFFATTN_INIT

template <class T> T defaults() {
    T value{};
    check(init_function<T>::call(&value));
    return value;
}

// Structs without an init function: zeroed with struct_size set (the C API's rule for them).
template <class T> T sized() {
    T value{};
    value.struct_size = static_cast<uint32_t>(sizeof value);
    return value;
}

// ---- Library ---------------------------------------------------------------------------------

inline std::string version() { return da_version(); }
inline uint32_t version_number() { return da_version_number(); }
inline uint32_t abi_version() { return da_abi_version(); }
// Throws when the loaded library cannot serve code compiled against this header.
inline void check_abi() { check(da_check_abi(DA_ABI_VERSION)); }

inline void set_num_threads(int32_t threads) { check(da_set_num_threads(threads)); }
inline int32_t num_threads() { return da_get_num_threads(); }

inline std::string cpu_features() { return da_cpu_features(); }
inline std::string kernel_paths() { return da_kernel_paths(); }
inline std::string kernel_path() { return da_kernel_path(); }
inline void set_kernel_path(const std::string &name) { check(da_set_kernel_path(name.c_str())); }
inline bool cpu_has_bf16_instructions() { return da_cpu_has_bf16_instructions() != 0; }

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

// Every processor kind (DA_PROCESSOR_* but DEFAULT), in the order of their values.
inline std::vector<int32_t> processor_kinds() {
    std::vector<int32_t> kinds(static_cast<std::size_t>(da_processor_kind_count()));
    for (std::size_t i = 0; i < kinds.size(); ++i) check(da_processor_kind_at(static_cast<int64_t>(i), &kinds[i]));
    return kinds;
}

// DA_PROCESSOR_FAMILY_* of a kind.
inline int32_t processor_family(int32_t kind) {
    int32_t family = 0;
    check(da_processor_family(kind, &family));
    return family;
}

// sizeof a struct of this header as the loaded library was compiled (0: unknown name).
inline std::size_t struct_size(const std::string &name) { return da_struct_size(name.c_str()); }

// A processor's constructor arguments with the kind's defaults (da_processor_config_init).
inline da_processor_config processor_config(int32_t kind) {
    da_processor_config config{};
    check(da_processor_config_init(&config, sizeof config, kind));
    return config;
}

// ---- Tensors ---------------------------------------------------------------------------------

template <class T> struct dl_dtype;
template <> struct dl_dtype<float> { static constexpr DLDataType value{kDLFloat, 32, 1}; };
template <> struct dl_dtype<uint8_t> { static constexpr DLDataType value{kDLUInt, 8, 1}; };  // boolean masks
template <> struct dl_dtype<int64_t> { static constexpr DLDataType value{kDLInt, 64, 1}; };  // positions

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
    const DLTensor *dl() const noexcept { return ptr_ ? &ptr_->dl_tensor : nullptr; }
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

namespace detail {
// Creates a handle with a da_*_create(args..., H *out) call.
template <class H, class F, class... Args> H create(F fn, Args &&...args) {
    H handle{};
    check(fn(std::forward<Args>(args)..., &handle));
    return handle;
}

// The strings of a (count, index → const char *) pair of calls, e.g. attn_processors' keys.
template <class H, class Count, class Item> std::vector<std::string> list(H handle, Count count_fn, Item item_fn) {
    int64_t count = 0;
    check(count_fn(handle, &count));
    std::vector<std::string> out;
    out.reserve(static_cast<std::size_t>(count));
    for (int64_t i = 0; i < count; ++i) {
        const char *s = nullptr;
        check(item_fn(handle, i, &s));
        out.emplace_back(s ? s : "");
    }
    return out;
}

// const char * views of strings for the C arrays of names; NULL for std::nullopt.
class CStrings {
public:
    explicit CStrings(const std::vector<std::string> &strings) {
        for (const std::string &s : strings) ptrs_.push_back(s.c_str());
    }
    const char *const *data() const noexcept { return ptrs_.empty() ? nullptr : ptrs_.data(); }
    std::size_t size() const noexcept { return ptrs_.size(); }

private:
    std::vector<const char *> ptrs_;
};
}  // namespace detail

// ---- Free functions: SDPA, rotary tables, SpatialNorm ------------------------------------------

struct SDPAOptions {
    bool is_causal = false;
    std::optional<double> scale;  // default 1/sqrt(D)
    bool enable_gqa = false;
    int32_t algorithm = DA_SDPA_AUTO;
    int32_t precision = DA_PRECISION_DEFAULT; // DA_PRECISION_INT8: opt-in int8 attention
};

// torch.nn.functional.scaled_dot_product_attention into the caller's `out` (B, H, Nq, Dv).
inline void scaled_dot_product_attention(const DLTensor *query, const DLTensor *key, const DLTensor *value,
                                         const DLTensor *attn_mask, const SDPAOptions &options, DLTensor *out) {
    da_sdpa_options opts = defaults<da_sdpa_options>();
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

struct RotaryTables {
    ManagedTensor cos, sin;
};

// da_rotary_tables: `positions` row-major (num_positions, axes_dim.size()).
inline RotaryTables rotary_tables(const std::vector<double> &positions, const std::vector<int64_t> &axes_dim,
                                  double theta = 10000.0, int32_t layout = DA_ROTARY_REPEAT_INTERLEAVED,
                                  bool float64 = false, double linear_factor = 1.0, double ntk_factor = 1.0) {
    if (axes_dim.empty() || positions.size() % axes_dim.size() != 0)
        throw Error(DA_ERR_INVALID_ARGUMENT, "rotary_tables: positions must hold num_positions × axes_dim.size() values");
    DLManagedTensor *cos = nullptr, *sin = nullptr;
    check(da_rotary_tables(positions.data(), static_cast<int64_t>(positions.size() / axes_dim.size()),
                           static_cast<int32_t>(axes_dim.size()), axes_dim.data(), theta, linear_factor, ntk_factor,
                           layout, float64 ? 1 : 0, &cos, &sin));
    return {ManagedTensor(cos), ManagedTensor(sin)};
}

// SpatialNorm.forward(f, zq) with the weights in `weights` (da_spatial_norm_weights).
inline ManagedTensor spatial_norm(const DLTensor *f, const DLTensor *zq, const da_spatial_norm_weights &weights) {
    DLManagedTensor *out = nullptr;
    check(da_spatial_norm(f, zq, &weights, &out));
    return ManagedTensor(out);
}

}  // namespace diffattn

#endif  // DIFFATTN_CORE_HPP
