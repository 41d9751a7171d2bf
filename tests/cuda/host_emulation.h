// Compiles the CUDA kernel files with a host compiler (g++ -x c++) and runs
// their kernels on the CPU, one thread after another: forced in front of each
// csrc/cuda/*.cu with -include, with -DFUSED_OPTIM_HOST_EMULATION and
// -D__STORAGE__=extern (threadIdx and blockIdx become assignable globals).
// Lets tests/cuda/test_kernels_emulated.cpp check the launcher and functors
// where there is no GPU.
#pragma once

#include <cuda_runtime.h>
#include <device_launch_parameters.h>

// Kernel-only qualifiers that host_defines.h leaves undefined for a host compiler.
#ifndef __launch_bounds__
#define __launch_bounds__(...)
#endif
#ifndef __grid_constant__
#define __grid_constant__
#endif

namespace fused_optim::cuda {

template <typename Kernel, typename Metadata, typename Functor>
cudaError_t emulate_launch(Kernel kernel, const Metadata& meta, const Functor& f, int blocks,
                           int threads) {
  blockDim = dim3(threads);
  gridDim = dim3(blocks);
  for (int b = 0; b < blocks; ++b) {
    blockIdx = uint3{static_cast<unsigned>(b), 0, 0};
    for (int t = 0; t < threads; ++t) {
      threadIdx = uint3{static_cast<unsigned>(t), 0, 0};
      kernel(meta, f);
    }
  }
  return cudaSuccess;
}

}  // namespace fused_optim::cuda
