// CUDA kernels of the fused optimizers, registered under the CUDA dispatch key:
// checks the inputs, groups the tensors by device and dtypes, and hands raw
// pointers to the launchers of the *.cu files (declared in launch.h). No math
// here, and no host sync: lr, the AMP scale and flag, and the step counts are
// read by the kernels from device memory, so the step can be captured in a
// CUDA graph.
#include <ATen/ATen.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGraphsC10Utils.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <array>
#include <map>
#include <optional>
#include <tuple>
#include <utility>
#include <vector>

#include "../checks.h"
#include "../dense_lists.h"
#include "../state_steps.h"
#include "launch.h"

namespace fused_optim::cuda {
namespace {

using at::Tensor;
using at::TensorList;
using std::optional;

ScalarType kernel_type(const char* op, at::ScalarType t) {
  switch (t) {
    case at::kFloat:
      return ScalarType::kFloat;
    case at::kDouble:
      return ScalarType::kDouble;
    case at::kHalf:
      return ScalarType::kHalf;
    case at::kBFloat16:
      return ScalarType::kBFloat16;
    default:
      TORCH_CHECK(false, op, ": params of dtype ", t,
                  " are not supported; supported are float64, float32, bfloat16 and float16");
  }
}

// A scalar as the kernel reads it: a CUDA tensor is read by the kernel (no
// sync, graph-safe), a CPU tensor here. Tensors on another device or of
// another dtype than float/double are converted on the stream first.
DeviceScalar device_scalar(const optional<Tensor>& t, double fallback, const at::Device& device,
                           std::vector<Tensor>& keep_alive) {
  DeviceScalar s;
  s.value = fallback;
  if (!t.has_value()) return s;
  if (!t->is_cuda()) {
    s.value = t->item<double>();
    return s;
  }
  Tensor d = *t;
  const bool is_double = d.scalar_type() == at::kDouble;
  if (d.device() != device || !(is_double || d.scalar_type() == at::kFloat)) {
    d = d.to(device, is_double ? at::kDouble : at::kFloat);
    keep_alive.push_back(d);
  }
  s.ptr = d.data_ptr();
  s.is_double = is_double;
  return s;
}

// What every kernel does before its launch: checks the call (checks.h, and
// that the params are CUDA tensors; in a captured graph, that no scalar is a
// CPU tensor, which would be read here once), then false when a CPU found_inf
// is set (nothing to do), else bumps the versions of what it writes and
// advances the step counts.
bool begin_step(const OpCall& call) {
  call.check();
  const char* op = call.op;
  for (size_t i = 0; i < call.params.size(); ++i)
    TORCH_CHECK(call.params[i].is_cuda(), op, ": params[", i, "] is on ", call.params[i].device(),
                "; the CUDA kernel takes CUDA tensors only");
  if (c10::cuda::currentStreamCaptureStatusMayInitCtx() != c10::cuda::CaptureStatus::None) {
    auto require_cuda = [&](const char* name, const optional<Tensor>& t) {
      TORCH_CHECK(!t.has_value() || t->is_cuda(), op, ": ", name,
                  " is a CPU tensor; in a step captured in a CUDA graph it must be on the GPU");
    };
    require_cuda("lr", call.lr_tensor);
    require_cuda("grad_scale", call.grad_scale);
    require_cuda("found_inf", call.found_inf);
  }
  const optional<Tensor>& found_inf = call.found_inf;
  if (found_inf.has_value() && !found_inf->is_cuda() && found_inf->item<double>() != 0.0) return false;
  call.bump_versions();
  if (call.state_steps.has_value()) advance_steps(*call.state_steps, found_inf);  // read by the launch
  return true;
}

// A step count the kernel can read: float32 on the param's device.
const float* step_ptr(const Tensor& step, const at::Device& device,
                      std::vector<Tensor>& keep_alive) {
  if (step.device() == device && step.scalar_type() == at::kFloat) return step.data_ptr<float>();
  Tensor converted = step.to(device, at::kFloat);
  keep_alive.push_back(converted);
  return converted.data_ptr<float>();
}

// Enqueues launch(types, tensors, common, stream) once per (device, param
// dtype, grad dtype) for the call's lists (OpCall::lists; an empty list is
// unused: null pointers). Strided tensors are updated through contiguous
// copies, written back after. Temporaries are freed on return: the caching
// allocator reuses their memory only after the launches that were enqueued on
// the same stream.
template <size_t N, typename Launch>
void run(const OpCall& call, double lr, double weight_decay, bool maximize, const Launch& launch) {
  std::array<std::vector<Tensor>, N> lists = call.lists<N>();
  std::vector<Tensor> keep_alive;
  DenseCopies dense;
  using Key = std::tuple<c10::DeviceIndex, at::ScalarType, at::ScalarType>;
  std::map<Key, std::vector<TensorPtrs<N>>> groups;

  for (size_t i = 0; i < lists[0].size(); ++i) {
    const Tensor& p = lists[0][i];
    if (p.numel() == 0) continue;
    dense.make_flat(lists, OpCall::written<N>(), i);
    TensorPtrs<N> t{};
    for (size_t k = 0; k < N; ++k)
      if (!lists[k].empty()) t.data[k] = lists[k][i].data_ptr();
    t.numel = p.numel();
    t.step = call.state_steps.has_value() ? step_ptr((*call.state_steps)[i], p.device(), keep_alive)
                                          : nullptr;
    groups[{p.device().index(), p.scalar_type(), lists[1][i].scalar_type()}].push_back(t);
  }

  for (const auto& [key, tensors] : groups) {
    const auto [index, param_type, grad_type] = key;
    const at::Device device(at::kCUDA, index);
    const c10::cuda::CUDAGuard guard(device);
    CommonArgs common;
    common.lr = device_scalar(call.lr_tensor, lr, device, keep_alive);
    common.grad_scale = device_scalar(call.grad_scale, 1.0, device, keep_alive);
    common.found_inf = device_scalar(call.found_inf, 0.0, device, keep_alive);
    common.weight_decay = weight_decay;
    common.maximize = maximize;
    common.unscale_grads = call.grad_scale.has_value();
    const Span<TensorPtrs<N>> span{tensors.data(), static_cast<int64_t>(tensors.size())};
    const ElementTypes types{kernel_type(call.op, param_type), kernel_type(call.op, grad_type)};
    C10_CUDA_CHECK(launch(types, span, common, c10::cuda::getCurrentCUDAStream(index).stream()));
  }
  dense.copy_back();
}

// Each kernel's launch, given the CommonArgs that run() makes per launch.
template <typename Args, typename Launcher>
auto launcher(Args& args, Launcher launch) {
  return [&args, launch](ElementTypes types, auto tensors, const CommonArgs& common, cudaStream_t stream) {
    args.common = common;
    return launch(types, tensors, args, stream);
  };
}

// ---------------------------------------------------------------- Momentum
void momentum_cuda(TensorList params, TensorList grads, TensorList momentum_buffers, double lr,
                   double momentum, double dampening, bool nesterov, double weight_decay,
                   bool maximize, bool first_step, const optional<Tensor>& lr_tensor,
                   const optional<Tensor>& grad_scale, const optional<Tensor>& found_inf,
                   const OptionalTensorList& model_params) {
  const OpCall call{"optimizers::momentum_", params, grads,
                    {{"momentum_buffers", momentum_buffers, momentum != 0.0,
                      momentum_requires_buffers(momentum)}},
                    std::nullopt, lr_tensor, grad_scale, found_inf, model_params};
  if (!begin_step(call)) return;
  MomentumArgs args{{}, momentum, dampening, nesterov, first_step};
  run<momentum_list::kCount>(call, lr, weight_decay, maximize, launcher(args, launch_momentum));
}

// ---------------------------------------------------------------- RMSProp
void rmsprop_cuda(TensorList params, TensorList grads, TensorList square_avgs, TensorList grad_avgs,
                  TensorList momentum_buffers, TensorList state_steps, double lr, double alpha,
                  double eps, double weight_decay, double momentum, bool centered, bool maximize,
                  const optional<Tensor>& lr_tensor, const optional<Tensor>& grad_scale,
                  const optional<Tensor>& found_inf, const OptionalTensorList& model_params) {
  const OpCall call{"optimizers::rmsprop_", params, grads,
                    {{"square_avgs", square_avgs},
                     {"grad_avgs", grad_avgs, centered},
                     {"momentum_buffers", momentum_buffers, momentum > 0.0}},
                    state_steps, lr_tensor, grad_scale, found_inf, model_params};
  if (!begin_step(call)) return;
  RMSPropArgs args{{}, alpha, eps, momentum, centered};
  run<rmsprop_list::kCount>(call, lr, weight_decay, maximize, launcher(args, launch_rmsprop));
}

// ---------------------------------------------------------------- Adam / AdamW
void adam_cuda(TensorList params, TensorList grads, TensorList exp_avgs, TensorList exp_avg_sqs,
               TensorList max_exp_avg_sqs, TensorList state_steps, double lr, double beta1,
               double beta2, double eps, double weight_decay, bool decoupled_weight_decay,
               bool amsgrad, bool bias_correction, bool maximize, const optional<Tensor>& lr_tensor,
               const optional<Tensor>& grad_scale, const optional<Tensor>& found_inf,
               const OptionalTensorList& model_params) {
  const OpCall call{"optimizers::adam_", params, grads,
                    {{"exp_avgs", exp_avgs},
                     {"exp_avg_sqs", exp_avg_sqs},
                     {"max_exp_avg_sqs", max_exp_avg_sqs, amsgrad}},
                    state_steps, lr_tensor, grad_scale, found_inf, model_params};
  if (!begin_step(call)) return;
  AdamArgs args{{}, beta1, beta2, eps, decoupled_weight_decay, amsgrad, bias_correction};
  run<adam_list::kCount>(call, lr, weight_decay, maximize, launcher(args, launch_adam));
}

// ---------------------------------------------------------------- diffGrad
void diffgrad_cuda(TensorList params, TensorList grads, TensorList exp_avgs, TensorList exp_avg_sqs,
                   TensorList previous_grads, TensorList state_steps, double lr, double beta1,
                   double beta2, double eps, double weight_decay, bool maximize,
                   const optional<Tensor>& lr_tensor, const optional<Tensor>& grad_scale,
                   const optional<Tensor>& found_inf, const OptionalTensorList& model_params) {
  const OpCall call{"optimizers::diffgrad_", params, grads,
                    {{"exp_avgs", exp_avgs}, {"exp_avg_sqs", exp_avg_sqs}, {"previous_grads", previous_grads}},
                    state_steps, lr_tensor, grad_scale, found_inf, model_params};
  if (!begin_step(call)) return;
  DiffGradArgs args{{}, beta1, beta2, eps};
  run<diffgrad_list::kCount>(call, lr, weight_decay, maximize, launcher(args, launch_diffgrad));
}

// ---------------------------------------------------------------- AdaGrad
void adagrad_cuda(TensorList params, TensorList grads, TensorList state_sums, TensorList state_steps,
                  double lr, double lr_decay, double weight_decay, double eps, bool maximize,
                  const optional<Tensor>& lr_tensor, const optional<Tensor>& grad_scale,
                  const optional<Tensor>& found_inf, const OptionalTensorList& model_params) {
  const OpCall call{"optimizers::adagrad_", params, grads, {{"state_sums", state_sums}},
                    state_steps, lr_tensor, grad_scale, found_inf, model_params};
  if (!begin_step(call)) return;
  AdagradArgs args{{}, lr_decay, eps};
  run<adagrad_list::kCount>(call, lr, weight_decay, maximize, launcher(args, launch_adagrad));
}

// ---------------------------------------------------------------- RAdam
void radam_cuda(TensorList params, TensorList grads, TensorList exp_avgs, TensorList exp_avg_sqs,
                TensorList state_steps, double lr, double beta1, double beta2, double eps,
                double weight_decay, bool decoupled_weight_decay, bool maximize,
                const optional<Tensor>& lr_tensor, const optional<Tensor>& grad_scale,
                const optional<Tensor>& found_inf, const OptionalTensorList& model_params) {
  const OpCall call{"optimizers::radam_", params, grads,
                    {{"exp_avgs", exp_avgs}, {"exp_avg_sqs", exp_avg_sqs}},
                    state_steps, lr_tensor, grad_scale, found_inf, model_params};
  if (!begin_step(call)) return;
  RAdamArgs args{{}, beta1, beta2, eps, decoupled_weight_decay};
  run<radam_list::kCount>(call, lr, weight_decay, maximize, launcher(args, launch_radam));
}

// ---------------------------------------------------------------- AdaBelief
void adabelief_cuda(TensorList params, TensorList grads, TensorList exp_avgs, TensorList exp_avg_vars,
                    TensorList max_exp_avg_vars, TensorList state_steps, double lr, double beta1,
                    double beta2, double eps, double weight_decay, bool decoupled_weight_decay,
                    bool amsgrad, bool maximize, const optional<Tensor>& lr_tensor,
                    const optional<Tensor>& grad_scale, const optional<Tensor>& found_inf,
                    const OptionalTensorList& model_params) {
  const OpCall call{"optimizers::adabelief_", params, grads,
                    {{"exp_avgs", exp_avgs},
                     {"exp_avg_vars", exp_avg_vars},
                     {"max_exp_avg_vars", max_exp_avg_vars, amsgrad}},
                    state_steps, lr_tensor, grad_scale, found_inf, model_params};
  if (!begin_step(call)) return;
  AdaBeliefArgs args{{}, beta1, beta2, eps, decoupled_weight_decay, amsgrad};
  run<adabelief_list::kCount>(call, lr, weight_decay, maximize, launcher(args, launch_adabelief));
}

}  // namespace

TORCH_LIBRARY_IMPL(optimizers, CUDA, m) {
  m.impl("momentum_", &momentum_cuda);
  m.impl("rmsprop_", &rmsprop_cuda);
  m.impl("adam_", &adam_cuda);
  m.impl("diffgrad_", &diffgrad_cuda);
  m.impl("adagrad_", &adagrad_cuda);
  m.impl("radam_", &radam_cuda);
  m.impl("adabelief_", &adabelief_cuda);
}

}  // namespace fused_optim::cuda
