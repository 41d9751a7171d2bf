// The scalars a kernel reads when it runs (lr, the AMP loss scale and found-inf
// flag, step counts) and the rules.h coefficients built from them. Reading them
// on the device keeps the step free of host syncs and lets a captured CUDA
// graph pick up new values of lr and the step count on each replay.
#pragma once

#include "../rules.h"
#include "launch.h"
#include "multi_tensor_apply.cuh"

namespace fused_optim::cuda {

__device__ __forceinline__ double read(const DeviceScalar& s) {
  if (s.ptr == nullptr) return s.value;
  return s.is_double ? *static_cast<const double*>(s.ptr)
                     : static_cast<double>(*static_cast<const float*>(s.ptr));
}

struct RunScalars {
  double lr;
  double inv_grad_scale;
  bool skip;  // found_inf is set: the whole update is skipped
  bool unscale_grads;
};

__device__ __forceinline__ RunScalars read_run_scalars(const CommonArgs& a) {
  return {read(a.lr), 1.0 / read(a.grad_scale), read(a.found_inf) != 0.0, a.unscale_grads};
}

template <typename T>
__device__ __forceinline__ GradUnscale<T> grad_unscale(const RunScalars& s) {
  return {s.unscale_grads, T(s.inv_grad_scale)};
}

template <typename T>
__device__ __forceinline__ GradPrep<T> grad_prep(const RunScalars& s, double l2, bool maximize) {
  return make_grad_prep<T>(s.inv_grad_scale, l2, maximize);
}

}  // namespace fused_optim::cuda
