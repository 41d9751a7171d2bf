// The direct call of an operator: optimizers._C.direct.<op>, a typed pybind11
// function that calls torch.ops.optimizers.<op> through the dispatcher without
// boxing its arguments. From Python, torch.ops boxes every argument into an
// IValue and back: about 7 us a call against 2 us here, and 160 us against 95 us
// when the step starts from cold caches, which is 6% of a 1M-element step.
// The eager step uses it (optimizers/_extension.py); torch.compile and torch
// function modes see torch.ops, which the dispatcher makes the same call.
//
// Each CPU kernel file registers its operator's direct call beside its kernel,
// typed by the kernel's own signature (every backend's kernel has the one that
// the schema gives); ops.cpp binds them all when optimizers._C is imported.
#pragma once

#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/csrc/Exceptions.h>
#include <torch/csrc/utils/pybind.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace fused_optim {

// An argument of a kernel as pybind11 converts it from Python: a TensorList is
// a list of tensors, an optional one is that or None.
template <typename T>
struct PyArg {
  static_assert(std::is_arithmetic_v<T>, "an argument type that PyArg does not convert");
  using type = T;
  static pybind11::arg named(const char* name) { return pybind11::arg(name); }
};

template <>
struct PyArg<at::TensorList> {
  using type = std::vector<at::Tensor>;
  static pybind11::arg named(const char* name) { return pybind11::arg(name); }
};

template <typename T>
struct PyArg<const std::optional<T>&> {
  using type = std::optional<typename PyArg<T>::type>;
  static pybind11::arg_v named(const char* name) { return pybind11::arg(name) = pybind11::none(); }
};

template <>
struct PyArg<at::Tensor> {
  using type = at::Tensor;
};

using DirectCallBinder = void (*)(pybind11::module_& m, const char* op);

// (operator name, its binder) for every operator that registered one.
std::vector<std::pair<const char*, DirectCallBinder>>& direct_calls();

// Defines m.<op>: a call of optimizers::<op> with the typed signature void(Args...),
// its arguments named as in the schema, the optional ones defaulting to None.
// Errors and warnings reach Python as torch.ops raises them; the GIL is released
// while the operator runs.
template <typename... Args>
void bind_direct_call(pybind11::module_& m, const char* op) {
  const auto handle =
      c10::Dispatcher::singleton().findSchemaOrThrow(("optimizers::" + std::string(op)).c_str(), "");
  const auto typed = handle.typed<void(Args...)>();  // throws if the signature is not the schema's
  const auto& arguments = handle.schema().arguments();
  TORCH_INTERNAL_ASSERT(arguments.size() == sizeof...(Args));
  [&]<size_t... I>(std::index_sequence<I...>) {
    m.def(op,
          torch::wrap_pybind_function_no_gil(
              [typed](typename PyArg<Args>::type... args) { typed.call(args...); }),
          PyArg<Args>::named(arguments[I].name().c_str())...);
  }(std::index_sequence_for<Args...>{});
}

// Constructed at load time, in the kernel's file: registers the direct call
// of operator `op`, typed by `kernel`.
struct DirectCall {
  template <typename... Args>
  DirectCall(const char* op, void (*/*kernel*/)(Args...)) {
    direct_calls().emplace_back(op, &bind_direct_call<Args...>);
  }
};

}  // namespace fused_optim
