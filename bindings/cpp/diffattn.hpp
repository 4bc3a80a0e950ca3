// diffattn.hpp — header-only C++17 wrapper over the whole C API of libdiffattn (diffattn.h).
//
//   diffattn::Attention attn(diffattn::attention_config(320, /*heads=*/8, /*dim_head=*/40));
//   diffattn::Tensor<float> x({2, 1024, 320}, 0.1f);
//   std::vector<diffattn::Tensor<float>> out = attn.forward(x);   // throws diffattn::Error
//
// - Owning types are move-only RAII objects whose destructor calls the matching da_*_destroy:
//   Attention, Model, Pipeline, Hook, ManagedTensor. Views of handles the library owns are copyable:
//   AttentionRef (a model's module), HookRegistry.
// - A failed call throws diffattn::Error, which carries the da_status and da_last_error()'s
//   message. C++ callbacks (hooks, timestep functions) never let an exception into the library:
//   it is kept, the C call fails with a status, and the exception is rethrown to the caller.
// - Config structs are the C ones, filled with diffusers' defaults by defaults<T>().
// - Tensor<T> owns a std::vector<T> plus shape and lends the library a DLTensor (dl()); any
//   caller-owned DLTensor works as well.
// Thread safety is that of the C calls underneath (see diffattn.h).
// Parts: diffattn/core.hpp (errors, defaults, tensors, free functions), diffattn/hooks.hpp,
// diffattn/attention.hpp, diffattn/model.hpp. Adding a C call is one method in one of them; a new
// config struct is one line in init_function (and cache_kind for a cache).
// Link with: c++ -std=c++17 prog.cpp $(pkg-config --cflags --libs diffattn)
#ifndef DIFFATTN_HPP
#define DIFFATTN_HPP

#include "diffattn/core.hpp"
#include "diffattn/hooks.hpp"
#include "diffattn/attention.hpp"
#include "diffattn/model.hpp"

#endif  // DIFFATTN_HPP
