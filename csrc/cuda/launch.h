// The interface between the ATen glue (fused_cuda.cpp) and the CUDA kernels
// (*.cu): plain pointers and numbers only, so that the kernel files compile
// with nvcc alone, without torch headers.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "../op_lists.h"
#include "../rules.h"

namespace fused_optim::cuda {

enum class ScalarType { kFloat, kDouble, kHalf, kBFloat16 };

// The element types of one launch: `param` of the params and their state,
// `grad` of the grads. They differ only under fp32 master weights: the params
// are then float32 masters, and the grads and the model params (the last list
// of every operator) are bf16/fp16.
struct ElementTypes {
  ScalarType param;
  ScalarType grad;
};

// A scalar that the kernel reads when it runs: from device memory when `ptr`
// is set (a tensor: no host sync, and a captured CUDA graph sees new values),
// else `value`.
struct DeviceScalar {
  const void* ptr = nullptr;
  bool is_double = false;  // *ptr is a double, else a float
  double value = 0.0;
};

// One param's arrays, in the order of the operator's tensor lists (see the
// indices below); nullptr for a list that is empty because unused. `step` is
// the param's float32 step count on the device, or nullptr.
template <int kDepth>
struct TensorPtrs {
  void* data[kDepth];
  int64_t numel;
  const float* step;
};

template <typename T>
struct Span {
  const T* data;
  int64_t size;
};

// What every operator shares.
struct CommonArgs {
  DeviceScalar lr;
  DeviceScalar grad_scale;  // the AMP loss scale; value 1 without a GradScaler
  DeviceScalar found_inf;   // nonzero: skip the whole update; value 0 without a GradScaler
  double weight_decay;      // L2 coefficient (AdamW: the decoupled one)
  bool maximize;
  bool unscale_grads = false;  // AMP: leave the grads unscaled in place after the update
};

// The lists of each operator are named in rules.h (TensorPtrs::data holds
// them in that order, the model params last).

struct MomentumArgs {
  CommonArgs common;
  double momentum;
  double dampening;
  bool nesterov;
  bool first_step;
};

struct RMSPropArgs {
  CommonArgs common;
  double alpha;
  double eps;
  double momentum;
  bool centered;
};

struct AdamArgs {
  CommonArgs common;
  double beta1;
  double beta2;
  double eps;
  bool decoupled_weight_decay;
  bool amsgrad;
  bool bias_correction;
};

struct DiffGradArgs {
  CommonArgs common;
  double beta1;
  double beta2;
  double eps;
};

struct AdagradArgs {
  CommonArgs common;
  double lr_decay;
  double eps;
};

struct RAdamArgs {
  CommonArgs common;
  double beta1;
  double beta2;
  double eps;
  bool decoupled_weight_decay;
};

struct AdaBeliefArgs {
  CommonArgs common;
  double beta1;
  double beta2;
  double eps;
  bool decoupled_weight_decay;
  bool amsgrad;
};

// Each enqueues the update of every tensor (all of the same types, on the
// current device) on `stream` and returns the launch's error code.
cudaError_t launch_momentum(ElementTypes types, Span<TensorPtrs<momentum_list::kCount>> tensors,
                            const MomentumArgs& args, cudaStream_t stream);
cudaError_t launch_rmsprop(ElementTypes types, Span<TensorPtrs<rmsprop_list::kCount>> tensors,
                           const RMSPropArgs& args, cudaStream_t stream);
cudaError_t launch_adam(ElementTypes types, Span<TensorPtrs<adam_list::kCount>> tensors,
                        const AdamArgs& args, cudaStream_t stream);
cudaError_t launch_diffgrad(ElementTypes types, Span<TensorPtrs<diffgrad_list::kCount>> tensors,
                            const DiffGradArgs& args, cudaStream_t stream);
cudaError_t launch_adagrad(ElementTypes types, Span<TensorPtrs<adagrad_list::kCount>> tensors,
                           const AdagradArgs& args, cudaStream_t stream);
cudaError_t launch_radam(ElementTypes types, Span<TensorPtrs<radam_list::kCount>> tensors,
                         const RAdamArgs& args, cudaStream_t stream);
cudaError_t launch_adabelief(ElementTypes types, Span<TensorPtrs<adabelief_list::kCount>> tensors,
                             const AdaBeliefArgs& args, cudaStream_t stream);

}  // namespace fused_optim::cuda
