// The operator schemas, declared once. Each operator advances its state_steps
// (unless found_inf is set) and then updates params and state in one pass.
// Each backend registers its kernels for these names under its own dispatch
// key (CPU in cpu/, CUDA in cuda/), so the dispatcher picks the device and
// Python never branches on it.
//
// AMP: with grad_scale, the grads are unscaled inside the kernel and left
// unscaled in place (as torch's fused optimizers leave them); with found_inf
// set, nothing is written at all.
//
// fp32 master weights: when model_params is given, `params` are float32 master
// copies of the model's bf16/fp16 params in model_params, the grads have the
// model params' dtype, the state has float32, and each model param receives
// its master's new value rounded once. The rule runs in fp32 on the master.
#include <ATen/record_function.h>
#include <torch/extension.h>

#include <string>
#include <utility>
#include <vector>

#include "direct_call.h"

namespace {

const char* const kSchemas[] = {
    "momentum_(Tensor(a!)[] params, Tensor(g!)[] grads, Tensor(b!)[] momentum_buffers, *, "
    "float lr, float momentum, float dampening, bool nesterov, float weight_decay, "
    "bool maximize, bool first_step, Tensor? lr_tensor=None, Tensor? grad_scale=None, "
    "Tensor? found_inf=None, Tensor(c!)[]? model_params=None) -> ()",
    "rmsprop_(Tensor(a!)[] params, Tensor(g!)[] grads, Tensor(b!)[] square_avgs, "
    "Tensor(c!)[] grad_avgs, Tensor(d!)[] momentum_buffers, Tensor(e!)[] state_steps, *, "
    "float lr, float alpha, "
    "float eps, float weight_decay, float momentum, bool centered, bool maximize, "
    "Tensor? lr_tensor=None, Tensor? grad_scale=None, Tensor? found_inf=None, "
    "Tensor(f!)[]? model_params=None) -> ()",
    "adam_(Tensor(a!)[] params, Tensor(g!)[] grads, Tensor(b!)[] exp_avgs, "
    "Tensor(c!)[] exp_avg_sqs, Tensor(d!)[] max_exp_avg_sqs, Tensor(e!)[] state_steps, *, "
    "float lr, float beta1, float beta2, float eps, float weight_decay, "
    "bool decoupled_weight_decay, bool amsgrad, bool bias_correction, bool maximize, "
    "Tensor? lr_tensor=None, Tensor? grad_scale=None, Tensor? found_inf=None, "
    "Tensor(f!)[]? model_params=None) -> ()",
    "diffgrad_(Tensor(a!)[] params, Tensor(g!)[] grads, Tensor(b!)[] exp_avgs, "
    "Tensor(c!)[] exp_avg_sqs, Tensor(d!)[] previous_grads, Tensor(e!)[] state_steps, *, "
    "float lr, float beta1, float beta2, float eps, float weight_decay, bool maximize, "
    "Tensor? lr_tensor=None, Tensor? grad_scale=None, Tensor? found_inf=None, "
    "Tensor(f!)[]? model_params=None) -> ()",
    "adagrad_(Tensor(a!)[] params, Tensor(g!)[] grads, Tensor(b!)[] state_sums, "
    "Tensor(e!)[] state_steps, *, float lr, float lr_decay, float weight_decay, float eps, "
    "bool maximize, Tensor? lr_tensor=None, Tensor? grad_scale=None, Tensor? found_inf=None, "
    "Tensor(f!)[]? model_params=None) -> ()",
    "radam_(Tensor(a!)[] params, Tensor(g!)[] grads, Tensor(b!)[] exp_avgs, "
    "Tensor(c!)[] exp_avg_sqs, Tensor(e!)[] state_steps, *, float lr, float beta1, float beta2, "
    "float eps, float weight_decay, bool decoupled_weight_decay, bool maximize, "
    "Tensor? lr_tensor=None, Tensor? grad_scale=None, Tensor? found_inf=None, "
    "Tensor(f!)[]? model_params=None) -> ()",
    "adabelief_(Tensor(a!)[] params, Tensor(g!)[] grads, Tensor(b!)[] exp_avgs, "
    "Tensor(c!)[] exp_avg_vars, Tensor(d!)[] max_exp_avg_vars, Tensor(e!)[] state_steps, *, "
    "float lr, float beta1, float beta2, float eps, float weight_decay, "
    "bool decoupled_weight_decay, bool amsgrad, bool maximize, Tensor? lr_tensor=None, "
    "Tensor? grad_scale=None, Tensor? found_inf=None, Tensor(f!)[]? model_params=None) -> ()",
};

// The operator's name: its schema up to the argument list.
std::string name_of(const char* schema) {
  const std::string s = schema;
  return s.substr(0, s.find('('));
}

}  // namespace

TORCH_LIBRARY(optimizers, m) {
  for (const char* schema : kSchemas) m.def(schema);
}

// An optimizer step is not differentiable, and each kernel bumps the versions
// of what it writes (checks.h): autograd has nothing to do. Falling through
// skips the boxed autograd fallback: 0.5 of the 2.6 us of a small direct call.
TORCH_LIBRARY_IMPL(optimizers, Autograd, m) {
  for (const char* schema : kSchemas) m.impl(name_of(schema).c_str(), torch::CppFunction::makeFallthrough());
}

namespace fused_optim {

std::vector<std::pair<const char*, DirectCallBinder>>& direct_calls() {
  static std::vector<std::pair<const char*, DirectCallBinder>> calls;
  return calls;
}

}  // namespace fused_optim

// Importing optimizers._C loads this library and so registers the operators;
// _C.direct holds their direct calls (direct_call.h).
PYBIND11_MODULE(_C, m) {
  m.doc() = "Fused optimizer kernels; the operators live in torch.ops.optimizers";
#ifdef OPTIMIZERS_WITH_CUDA
  m.attr("with_cuda") = true;
#else
  m.attr("with_cuda") = false;
#endif
  // Whether anything observes RecordFunctions (a profiler, an execution trace):
  // only then does the step label itself, as torch.optim's do (optimizers/_step_hooks.py).
  m.def("record_function_observed", &at::hasCallbacks);
  auto direct = m.def_submodule("direct", "The operators' typed calls, without torch.ops' boxing");
  for (const auto& [op, bind] : fused_optim::direct_calls()) bind(direct, op);
}
