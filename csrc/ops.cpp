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
#include <torch/extension.h>

TORCH_LIBRARY(optimizers, m) {
  m.def(
      "momentum_(Tensor(a!)[] params, Tensor(g!)[] grads, Tensor(b!)[] momentum_buffers, *, "
      "float lr, float momentum, float dampening, bool nesterov, float weight_decay, "
      "bool maximize, bool first_step, Tensor? lr_tensor=None, Tensor? grad_scale=None, "
      "Tensor? found_inf=None, Tensor(c!)[]? model_params=None) -> ()");
  m.def(
      "rmsprop_(Tensor(a!)[] params, Tensor(g!)[] grads, Tensor(b!)[] square_avgs, "
      "Tensor(c!)[] grad_avgs, Tensor(d!)[] momentum_buffers, Tensor(e!)[] state_steps, *, "
      "float lr, float alpha, "
      "float eps, float weight_decay, float momentum, bool centered, bool maximize, "
      "Tensor? lr_tensor=None, Tensor? grad_scale=None, Tensor? found_inf=None, "
      "Tensor(f!)[]? model_params=None) -> ()");
  m.def(
      "adam_(Tensor(a!)[] params, Tensor(g!)[] grads, Tensor(b!)[] exp_avgs, "
      "Tensor(c!)[] exp_avg_sqs, Tensor(d!)[] max_exp_avg_sqs, Tensor(e!)[] state_steps, *, "
      "float lr, float beta1, float beta2, float eps, float weight_decay, "
      "bool decoupled_weight_decay, bool amsgrad, bool bias_correction, bool maximize, "
      "Tensor? lr_tensor=None, Tensor? grad_scale=None, Tensor? found_inf=None, "
      "Tensor(f!)[]? model_params=None) -> ()");
  m.def(
      "diffgrad_(Tensor(a!)[] params, Tensor(g!)[] grads, Tensor(b!)[] exp_avgs, "
      "Tensor(c!)[] exp_avg_sqs, Tensor(d!)[] previous_grads, Tensor(e!)[] state_steps, *, "
      "float lr, float beta1, float beta2, float eps, float weight_decay, bool maximize, "
      "Tensor? lr_tensor=None, Tensor? grad_scale=None, Tensor? found_inf=None, "
      "Tensor(f!)[]? model_params=None) -> ()");
  m.def(
      "adagrad_(Tensor(a!)[] params, Tensor(g!)[] grads, Tensor(b!)[] state_sums, "
      "Tensor(e!)[] state_steps, *, float lr, float lr_decay, float weight_decay, float eps, "
      "bool maximize, Tensor? lr_tensor=None, Tensor? grad_scale=None, Tensor? found_inf=None, "
      "Tensor(f!)[]? model_params=None) -> ()");
  m.def(
      "radam_(Tensor(a!)[] params, Tensor(g!)[] grads, Tensor(b!)[] exp_avgs, "
      "Tensor(c!)[] exp_avg_sqs, Tensor(e!)[] state_steps, *, float lr, float beta1, float beta2, "
      "float eps, float weight_decay, bool decoupled_weight_decay, bool maximize, "
      "Tensor? lr_tensor=None, Tensor? grad_scale=None, Tensor? found_inf=None, "
      "Tensor(f!)[]? model_params=None) -> ()");
  m.def(
      "adabelief_(Tensor(a!)[] params, Tensor(g!)[] grads, Tensor(b!)[] exp_avgs, "
      "Tensor(c!)[] exp_avg_vars, Tensor(d!)[] max_exp_avg_vars, Tensor(e!)[] state_steps, *, "
      "float lr, float beta1, float beta2, float eps, float weight_decay, "
      "bool decoupled_weight_decay, bool amsgrad, bool maximize, Tensor? lr_tensor=None, "
      "Tensor? grad_scale=None, Tensor? found_inf=None, Tensor(f!)[]? model_params=None) -> ()");
}

// Importing optimizers._C loads this library and so registers the operators.
PYBIND11_MODULE(_C, m) {
  m.doc() = "Fused optimizer kernels; the operators live in torch.ops.optimizers";
#ifdef OPTIMIZERS_WITH_CUDA
  m.attr("with_cuda") = true;
#else
  m.attr("with_cuda") = false;
#endif
}
