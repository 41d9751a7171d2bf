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
#include "../versions.h"
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

// The operator's scalar tensors, as passed.
struct ScalarTensors {
  double lr;
  const optional<Tensor>& lr_tensor;
  const optional<Tensor>& grad_scale;
  const optional<Tensor>& found_inf;
};

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

// The checks of every operator before it touches any state (the step counts),
// then false when a CPU found_inf is set: nothing to do.
bool begin_step(const char* op, TensorList params, const ScalarTensors& scalars) {
  for (size_t i = 0; i < params.size(); ++i)
    TORCH_CHECK(params[i].is_cuda(), op, ": params[", i, "] is on ", params[i].device(),
                "; the CUDA kernel takes CUDA tensors only");
  if (c10::cuda::currentStreamCaptureStatusMayInitCtx() != c10::cuda::CaptureStatus::None) {
    // A CPU tensor is read on the host: its value would be frozen into the graph.
    auto require_cuda = [&](const char* name, const optional<Tensor>& t) {
      TORCH_CHECK(!t.has_value() || t->is_cuda(), op, ": ", name,
                  " is a CPU tensor; in a step captured in a CUDA graph it must be on the GPU");
    };
    require_cuda("lr", scalars.lr_tensor);
    require_cuda("grad_scale", scalars.grad_scale);
    require_cuda("found_inf", scalars.found_inf);
  }
  const optional<Tensor>& found_inf = scalars.found_inf;
  return !(found_inf.has_value() && !found_inf->is_cuda() && found_inf->item<double>() != 0.0);
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
// dtype, grad dtype). lists[0] are the params, lists[1] the grads, lists[N-1]
// the model params (fp32 master weights); an empty list is unused (null
// pointers). Strided tensors are updated through contiguous copies, written
// back after for the lists flagged in `mutated`. Temporaries are freed on
// return: the caching allocator reuses their memory only after the launches
// that were enqueued on the same stream.
template <size_t N, typename Launch>
void run(const char* op, std::array<std::vector<Tensor>, N> lists, const std::array<bool, N>& mutated,
         TensorList state_steps, const ScalarTensors& scalars, double weight_decay, bool maximize,
         const Launch& launch) {
  std::vector<Tensor> keep_alive;
  DenseCopies dense;
  using Key = std::tuple<c10::DeviceIndex, at::ScalarType, at::ScalarType>;
  std::map<Key, std::vector<TensorPtrs<N>>> groups;

  for (size_t i = 0; i < lists[0].size(); ++i) {
    const Tensor& p = lists[0][i];
    if (p.numel() == 0) continue;
    dense.make_flat(lists, mutated, i);
    TensorPtrs<N> t{};
    for (size_t k = 0; k < N; ++k)
      if (!lists[k].empty()) t.data[k] = lists[k][i].data_ptr();
    t.numel = p.numel();
    t.step = state_steps.empty() ? nullptr : step_ptr(state_steps[i], p.device(), keep_alive);
    groups[{p.device().index(), p.scalar_type(), lists[1][i].scalar_type()}].push_back(t);
  }

  for (const auto& [key, tensors] : groups) {
    const auto [index, param_type, grad_type] = key;
    const at::Device device(at::kCUDA, index);
    const c10::cuda::CUDAGuard guard(device);
    CommonArgs common;
    common.lr = device_scalar(scalars.lr_tensor, scalars.lr, device, keep_alive);
    common.grad_scale = device_scalar(scalars.grad_scale, 1.0, device, keep_alive);
    common.found_inf = device_scalar(scalars.found_inf, 0.0, device, keep_alive);
    common.weight_decay = weight_decay;
    common.maximize = maximize;
    common.unscale_grads = scalars.grad_scale.has_value();
    const Span<TensorPtrs<N>> span{tensors.data(), static_cast<int64_t>(tensors.size())};
    const ElementTypes types{kernel_type(op, param_type), kernel_type(op, grad_type)};
    C10_CUDA_CHECK(launch(types, span, common, c10::cuda::getCurrentCUDAStream(index).stream()));
  }
  dense.copy_back();
}

// ---------------------------------------------------------------- Momentum
void momentum_cuda(TensorList params, TensorList grads, TensorList momentum_buffers, double lr,
                   double momentum, double dampening, bool nesterov, double weight_decay,
                   bool maximize, bool first_step, const optional<Tensor>& lr_tensor,
                   const optional<Tensor>& grad_scale, const optional<Tensor>& found_inf,
                   const OptionalTensorList& model_params) {
  const char* op = "optimizers::momentum_";
  check_momentum_args(params, grads, momentum_buffers, momentum, lr_tensor, grad_scale, found_inf,
                      model_params);
  const ScalarTensors scalars{lr, lr_tensor, grad_scale, found_inf};
  if (!begin_step(op, params, scalars)) return;
  bump_versions(
      {params, momentum_buffers, unscaled(grads, grad_scale), written_models(model_params)});
  MomentumArgs args{{}, momentum, dampening, nesterov, first_step};
  run<momentum_list::kCount>(
      op, {params.vec(), grads.vec(), momentum_buffers.vec(), model_list(model_params)}, {true, false, true, true}, {},
      scalars, weight_decay, maximize,
      [&](ElementTypes types, auto tensors, const CommonArgs& common, cudaStream_t stream) {
        args.common = common;
        return launch_momentum(types, tensors, args, stream);
      });
}

// ---------------------------------------------------------------- RMSProp
void rmsprop_cuda(TensorList params, TensorList grads, TensorList square_avgs, TensorList grad_avgs,
                  TensorList momentum_buffers, TensorList state_steps, double lr, double alpha,
                  double eps,
                  double weight_decay, double momentum, bool centered, bool maximize,
                  const optional<Tensor>& lr_tensor, const optional<Tensor>& grad_scale,
                  const optional<Tensor>& found_inf, const OptionalTensorList& model_params) {
  const char* op = "optimizers::rmsprop_";
  check_rmsprop_args(params, grads, square_avgs, grad_avgs, momentum_buffers, state_steps, centered,
                     momentum, lr_tensor, grad_scale, found_inf, model_params);
  const ScalarTensors scalars{lr, lr_tensor, grad_scale, found_inf};
  if (!begin_step(op, params, scalars)) return;
  bump_versions({params, square_avgs, grad_avgs, momentum_buffers, state_steps,
                 unscaled(grads, grad_scale), written_models(model_params)});
  advance_steps(state_steps, found_inf);
  RMSPropArgs args{{}, alpha, eps, momentum, centered};
  run<rmsprop_list::kCount>(
      op, {params.vec(), grads.vec(), square_avgs.vec(), grad_avgs.vec(), momentum_buffers.vec(),
       model_list(model_params)},
      {true, false, true, true, true, true}, {}, scalars, weight_decay, maximize,
      [&](ElementTypes types, auto tensors, const CommonArgs& common, cudaStream_t stream) {
        args.common = common;
        return launch_rmsprop(types, tensors, args, stream);
      });
}

// ---------------------------------------------------------------- Adam / AdamW
void adam_cuda(TensorList params, TensorList grads, TensorList exp_avgs, TensorList exp_avg_sqs,
               TensorList max_exp_avg_sqs, TensorList state_steps, double lr, double beta1,
               double beta2, double eps, double weight_decay, bool decoupled_weight_decay,
               bool amsgrad, bool bias_correction, bool maximize, const optional<Tensor>& lr_tensor,
               const optional<Tensor>& grad_scale, const optional<Tensor>& found_inf,
               const OptionalTensorList& model_params) {
  const char* op = "optimizers::adam_";
  check_adam_args(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, state_steps, amsgrad,
                  lr_tensor, grad_scale, found_inf, model_params);
  const ScalarTensors scalars{lr, lr_tensor, grad_scale, found_inf};
  if (!begin_step(op, params, scalars)) return;
  bump_versions({params, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, state_steps,
                 unscaled(grads, grad_scale), written_models(model_params)});
  advance_steps(state_steps, found_inf);  // before the launch, which reads them
  AdamArgs args{{}, beta1, beta2, eps, decoupled_weight_decay, amsgrad, bias_correction};
  run<adam_list::kCount>(
      op, {params.vec(), grads.vec(), exp_avgs.vec(), exp_avg_sqs.vec(), max_exp_avg_sqs.vec(),
       model_list(model_params)},
      {true, false, true, true, true, true},
      state_steps, scalars, weight_decay, maximize,
      [&](ElementTypes types, auto tensors, const CommonArgs& common, cudaStream_t stream) {
        args.common = common;
        return launch_adam(types, tensors, args, stream);
      });
}

// ---------------------------------------------------------------- diffGrad
void diffgrad_cuda(TensorList params, TensorList grads, TensorList exp_avgs, TensorList exp_avg_sqs,
                   TensorList previous_grads, TensorList state_steps, double lr, double beta1,
                   double beta2, double eps, double weight_decay, bool maximize,
                   const optional<Tensor>& lr_tensor, const optional<Tensor>& grad_scale,
                   const optional<Tensor>& found_inf, const OptionalTensorList& model_params) {
  const char* op = "optimizers::diffgrad_";
  check_diffgrad_args(params, grads, exp_avgs, exp_avg_sqs, previous_grads, state_steps, lr_tensor,
                      grad_scale, found_inf, model_params);
  const ScalarTensors scalars{lr, lr_tensor, grad_scale, found_inf};
  if (!begin_step(op, params, scalars)) return;
  bump_versions({params, exp_avgs, exp_avg_sqs, previous_grads, state_steps,
                 unscaled(grads, grad_scale), written_models(model_params)});
  advance_steps(state_steps, found_inf);  // before the launch, which reads them
  DiffGradArgs args{{}, beta1, beta2, eps};
  run<diffgrad_list::kCount>(
      op, {params.vec(), grads.vec(), exp_avgs.vec(), exp_avg_sqs.vec(), previous_grads.vec(),
       model_list(model_params)},
      {true, false, true, true, true, true},
      state_steps, scalars, weight_decay, maximize,
      [&](ElementTypes types, auto tensors, const CommonArgs& common, cudaStream_t stream) {
        args.common = common;
        return launch_diffgrad(types, tensors, args, stream);
      });
}

}  // namespace

TORCH_LIBRARY_IMPL(optimizers, CUDA, m) {
  m.impl("momentum_", &momentum_cuda);
  m.impl("rmsprop_", &rmsprop_cuda);
  m.impl("adam_", &adam_cuda);
  m.impl("diffgrad_", &diffgrad_cuda);
}

}  // namespace fused_optim::cuda
