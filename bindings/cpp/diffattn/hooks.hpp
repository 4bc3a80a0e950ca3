// diffattn/hooks.hpp — user hooks from C++ callables, hook registries, timestep callbacks.
// Part of the C++17 wrapper; include <diffattn.hpp>.
#ifndef DIFFATTN_HOOKS_HPP
#define DIFFATTN_HOOKS_HPP

#include "core.hpp"

#include <functional>

namespace diffattn {

namespace detail {
// Runs a C++ callback for the C library: returns DA_OK, the status of a thrown Error, or DA_ERR_VALUE
// for any other exception; the exception itself waits in pending_exception() for check().
template <class F> int32_t guarded_callback(F &&body) noexcept {
    try {
        body();
        return DA_OK;
    } catch (const Error &e) {
        if (!pending_exception()) pending_exception() = std::current_exception();
        return e.status() != DA_OK ? e.status() : DA_ERR_VALUE;
    } catch (...) {
        if (!pending_exception()) pending_exception() = std::current_exception();
        return DA_ERR_VALUE;
    }
}
}  // namespace detail

// ---- Hooks from C++ callables ----------------------------------------------------------------

// diffusers' ModelHook as C++ callables; an empty std::function keeps diffusers' default. Throwing
// fails the call in progress (the C API reports the status; check() rethrows the exception on the
// thread that made the call).
struct HookFunctions {
    bool is_stateful = false;
    std::function<void(const std::string &path)> initialize_hook;
    std::function<void(const std::string &path)> deinitialize_hook;
    // `hidden_states`: a writable float32 copy of the module's input (nullptr for host-run modules).
    std::function<void(const std::string &path, DLTensor *hidden_states)> pre_forward;
    // `outputs`: the module's outputs, writable in place (nullptr, 0 for host-run modules).
    std::function<void(const std::string &path, DLTensor *outputs, int32_t num_outputs)> post_forward;
    std::function<void(const std::string &path)> reset_state;
};

// A hook (da_hook). Move-only; registrations keep the C hook (and the callables) alive after this
// object is gone, as in the C API.
class Hook {
public:
    // From raw C callbacks (the caller keeps user_data alive until its destroy callback).
    explicit Hook(const da_hook_callbacks &callbacks) : handle_(detail::create<da_hook>(da_hook_create, &callbacks)) {}

    explicit Hook(HookFunctions functions) {
        da_hook_callbacks c = defaults<da_hook_callbacks>();
        auto *state = new HookFunctions(std::move(functions));
        c.is_stateful = state->is_stateful ? 1 : 0;
        c.user_data = state;
        if (state->initialize_hook) c.initialize_hook = &path_callback<&HookFunctions::initialize_hook>;
        if (state->deinitialize_hook) c.deinitialize_hook = &path_callback<&HookFunctions::deinitialize_hook>;
        if (state->reset_state) c.reset_state = &path_callback<&HookFunctions::reset_state>;
        if (state->pre_forward) c.pre_forward = &pre_forward;
        if (state->post_forward) c.post_forward = &post_forward;
        c.destroy = &destroy;
        da_hook handle = nullptr;
        da_status status = da_hook_create(&c, &handle);
        if (status != DA_OK) delete state;  // not created: the library will never call destroy
        check(status);
        handle_.reset(handle);
    }

    da_hook handle() const noexcept { return handle_.get(); }

private:
    template <std::function<void(const std::string &)> HookFunctions::*member>
    static int32_t path_callback(void *user_data, const char *path) {
        auto *f = static_cast<HookFunctions *>(user_data);
        return detail::guarded_callback([&] { (f->*member)(path ? path : ""); });
    }
    static int32_t pre_forward(void *user_data, const char *path, DLTensor *hidden_states) {
        auto *f = static_cast<HookFunctions *>(user_data);
        return detail::guarded_callback([&] { f->pre_forward(path ? path : "", hidden_states); });
    }
    static int32_t post_forward(void *user_data, const char *path, DLTensor *outputs, int32_t num_outputs) {
        auto *f = static_cast<HookFunctions *>(user_data);
        return detail::guarded_callback([&] { f->post_forward(path ? path : "", outputs, num_outputs); });
    }
    static void destroy(void *user_data) { delete static_cast<HookFunctions *>(user_data); }

    UniqueHandle<da_hook, da_hook_destroy> handle_;
};

// The hook registry of one module (da_hook_registry): owned by the module, so this is a copyable
// view, valid while the model or attention module is.
class HookRegistry {
public:
    explicit HookRegistry(da_hook_registry registry) noexcept : registry_(registry) {}
    da_hook_registry handle() const noexcept { return registry_; }

    void register_hook(const std::string &name, const Hook &hook) {
        check(da_hook_registry_register(registry_, name.c_str(), hook.handle()));
    }
    void remove_hook(const std::string &name, bool recurse = true) {
        check(da_hook_registry_remove(registry_, name.c_str(), recurse ? 1 : 0));
    }
    bool has_hook(const std::string &name) const {
        int32_t present = 0;
        check(da_hook_registry_has_hook(registry_, name.c_str(), &present));
        return present != 0;
    }
    std::vector<std::string> hook_names() const {
        return detail::list(registry_, da_hook_registry_hook_count, da_hook_registry_hook_name);
    }
    void reset_stateful_hooks(bool recurse = true) {
        check(da_hook_registry_reset_stateful_hooks(registry_, recurse ? 1 : 0));
    }
    void enter() { check(da_hook_registry_enter(registry_)); }
    void exit() { check(da_hook_registry_exit(registry_)); }

    // Brackets a host-run module's call: enter now, exit by done() (which throws) or, if done() was
    // not reached, by the destructor (errors then ignored).
    class Scope {
    public:
        explicit Scope(da_hook_registry registry) : registry_(registry) { check(da_hook_registry_enter(registry_)); }
        Scope(const Scope &) = delete;
        Scope &operator=(const Scope &) = delete;
        ~Scope() {
            if (open_) da_hook_registry_exit(registry_);
        }
        void done() {
            open_ = false;
            check(da_hook_registry_exit(registry_));
        }

    private:
        da_hook_registry registry_;
        bool open_ = true;
    };
    Scope scope() { return Scope(registry_); }

private:
    da_hook_registry registry_;
};

// ---- Callbacks of cache configs --------------------------------------------------------------

using TimestepFunction = std::function<double()>;                        // da_timestep_callback
using AttentionWeightFunction = std::function<double(const std::string &path)>;  // da_attention_weight_callback

namespace detail {
struct CacheCallbacks {
    TimestepFunction timestep;
    AttentionWeightFunction attention_weight;

    static int32_t timestep_callback(void *user_data, double *timestep) {
        auto *f = static_cast<CacheCallbacks *>(user_data);
        return guarded_callback([&] { *timestep = f->timestep(); });
    }
    static int32_t weight_callback(void *user_data, const char *path, double *weight) {
        auto *f = static_cast<CacheCallbacks *>(user_data);
        return guarded_callback([&] { *weight = f->attention_weight(path ? path : ""); });
    }
};

// Objects the library calls back into, kept alive by every C++ owner of the model (Model, and the
// Pipelines it was added to, since a pipeline keeps the C model alive).
using KeepAlive = std::shared_ptr<std::vector<std::shared_ptr<void>>>;
}  // namespace detail

}  // namespace diffattn

#endif  // DIFFATTN_HOOKS_HPP
