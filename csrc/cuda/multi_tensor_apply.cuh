// Generic multi-tensor apply for CUDA: packs the tensors of a param group into
// as few launches as fit, one block per chunk of one tensor, and runs a
// per-optimizer functor on each chunk. It knows nothing of any rule.
//
// Each launch carries its tensors' addresses and sizes, and maps from block to
// tensor and block to chunk, in the kernel's parameters (no host-to-device copy,
// so a captured CUDA graph holds everything it needs). When the tensor slots or
// the block map are full, the launch goes out and packing starts over, carrying
// a half-done tensor into the next launch.
//
// Addresses are untyped: the element loop (chunk_apply) gives each list its
// type, S for the params and their state and G for the grads and the model
// params; S is float and G bf16/fp16 under fp32 master weights, else S == G.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>

#include "dtypes.cuh"
#include "launch.h"

namespace fused_optim::cuda {

constexpr int kBlockThreads = 512;
// Two resident blocks per multiprocessor (at most 64 registers a thread), so that
// one block's loads are in flight while the other computes.
constexpr int kMinBlocksPerSM = 2;
// Elements per block: a multiple of every vector width times kBlockThreads, so
// that chunk starts keep their tensor's alignment.
constexpr int64_t kChunkElements = 1 << 16;
constexpr int kVectorBytes = 16;

// Kernel parameters may take 32764 bytes from CUDA 12.1 on (sm_70 and newer),
// enough for hundreds of tensors per launch; 4096 before.
#if CUDART_VERSION >= 12010
constexpr int kMaxKernelParamBytes = 32764;
#else
constexpr int kMaxKernelParamBytes = 4096;
#endif
// Room left in the kernel parameters for the functor (the optimizer's scalars).
constexpr int kFunctorParamBytes = 512;
constexpr int kMetadataBytes = kMaxKernelParamBytes - kFunctorParamBytes;
constexpr int kMostTensorsPerLaunch = 256;

// One block's share of the work.
struct ChunkRef {
  int tensor;     // slot in the launch's metadata
  int64_t begin;  // first element of the chunk, 64-bit: tensors may exceed 2^31 elements
  int size;       // elements in the chunk, at most kChunkElements
};

template <int kDepth_, bool kHasStep_>
struct TensorListMetadata {
  static constexpr int kDepth = kDepth_;
  static constexpr bool kHasStep = kHasStep_;
  static constexpr int kTensorBytes =
      kDepth * sizeof(void*) + sizeof(int64_t) + (kHasStep ? sizeof(float*) : 0);
  static constexpr int kBlockBytes = sizeof(int32_t) + sizeof(uint16_t);
  static constexpr int kMaxTensors = kMetadataBytes / 2 / kTensorBytes < kMostTensorsPerLaunch
                                         ? kMetadataBytes / 2 / kTensorBytes
                                         : kMostTensorsPerLaunch;
  // Whatever the tensor slots leave, less the padding at the end of the struct.
  static constexpr int kMaxBlocks = (kMetadataBytes - kMaxTensors * kTensorBytes - 8) / kBlockBytes;

  void* addresses[kDepth][kMaxTensors];
  int64_t numel[kMaxTensors];
  const float* steps[kHasStep ? kMaxTensors : 1];
  int32_t block_to_chunk[kMaxBlocks];  // chunk index within its tensor
  uint16_t block_to_tensor[kMaxBlocks];

  __device__ __forceinline__ float step(const ChunkRef& chunk) const {
    static_assert(kHasStep, "this launch carries no step counts");
    return *steps[chunk.tensor];
  }
};

// Kernel arguments of up to 32 KB (the metadata) and __grid_constant__ need
// sm_70 or newer; older targets would fail in ptxas with a less clear message.
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 700
#error "the fused optimizer kernels need sm_70 (Volta) or newer: set TORCH_CUDA_ARCH_LIST to 7.0+"
#endif

// __grid_constant__: the metadata is read in place from the parameter space,
// never copied to local memory, although it is indexed at run time.
template <typename Metadata, typename Functor>
__global__ void __launch_bounds__(kBlockThreads, kMinBlocksPerSM)
    multi_tensor_kernel(const __grid_constant__ Metadata meta, const __grid_constant__ Functor f) {
  const int tensor = meta.block_to_tensor[blockIdx.x];
  const int64_t begin = static_cast<int64_t>(meta.block_to_chunk[blockIdx.x]) * kChunkElements;
  const int64_t left = meta.numel[tensor] - begin;
  f(meta, ChunkRef{tensor, begin, static_cast<int>(left < kChunkElements ? left : kChunkElements)});
}

// Packs the chunks of every non-empty tensor into metadata and calls
// launch(meta, blocks) whenever the tensor slots or the block map are full, and
// once at the end. Host code without CUDA calls, so that it is tested without
// a GPU (tests/cuda/test_pack_chunks.cu, with small capacities).
template <typename Metadata, typename Launch>
cudaError_t pack_chunks(Span<TensorPtrs<Metadata::kDepth>> tensors, Metadata& meta,
                        const Launch& launch) {
  static_assert(Metadata::kMaxTensors <= 65536, "block_to_tensor holds 16-bit slots");
  int blocks = 0;
  int slot = 0;  // the current tensor's slot
  for (int64_t i = 0; i < tensors.size; ++i) {
    const TensorPtrs<Metadata::kDepth>& t = tensors.data[i];
    if (t.numel == 0) continue;
    for (int k = 0; k < Metadata::kDepth; ++k) meta.addresses[k][slot] = t.data[k];
    meta.numel[slot] = t.numel;
    if constexpr (Metadata::kHasStep) meta.steps[slot] = t.step;

    const int64_t chunks = (t.numel + kChunkElements - 1) / kChunkElements;
    for (int64_t c = 0; c < chunks; ++c) {
      meta.block_to_tensor[blocks] = static_cast<uint16_t>(slot);
      meta.block_to_chunk[blocks] = static_cast<int32_t>(c);
      ++blocks;
      const bool last_chunk = c == chunks - 1;
      if (blocks < Metadata::kMaxBlocks && !(last_chunk && slot == Metadata::kMaxTensors - 1))
        continue;
      if (cudaError_t err = launch(meta, blocks); err != cudaSuccess) return err;
      blocks = 0;
      if (last_chunk) {
        slot = -1;  // the next tensor starts at slot 0
      } else {      // the rest of this tensor continues in slot 0 of the next launch
        for (int k = 0; k < Metadata::kDepth; ++k) meta.addresses[k][0] = meta.addresses[k][slot];
        meta.numel[0] = meta.numel[slot];
        if constexpr (Metadata::kHasStep) meta.steps[0] = meta.steps[slot];
        slot = 0;
      }
    }
    ++slot;
  }
  return blocks > 0 ? launch(meta, blocks) : cudaSuccess;
}

#if defined(FUSED_OPTIM_HOST_EMULATION)
// Test seam: tests/cuda/host_emulation.h compiles the kernel files with a host
// compiler and runs each block's threads one after another on the CPU (the
// kernels share nothing between threads, so this is exact).
template <typename Kernel, typename Metadata, typename Functor>
cudaError_t emulate_launch(Kernel kernel, const Metadata& meta, const Functor& f, int blocks,
                           int threads);
#endif

// Enqueues f on every chunk of every tensor on `stream`. f is called on the
// device as f(meta, chunk) and reads the chunk's pointers from meta.
template <bool kHasStep, int kDepth, typename Functor>
cudaError_t multi_tensor_apply(Span<TensorPtrs<kDepth>> tensors, const Functor& f,
                               cudaStream_t stream) {
  using Metadata = TensorListMetadata<kDepth, kHasStep>;
  static_assert(sizeof(Metadata) + sizeof(Functor) <= kMaxKernelParamBytes,
                "kernel parameters too large");
  Metadata meta;  // copied into the kernel's parameters at each launch, then refilled
  return pack_chunks(tensors, meta, [&](const Metadata& m, int blocks) {
#if defined(FUSED_OPTIM_HOST_EMULATION)
    (void)stream;
    return emulate_launch(multi_tensor_kernel<Metadata, Functor>, m, f, blocks, kBlockThreads);
#else
    multi_tensor_kernel<<<blocks, kBlockThreads, 0, stream>>>(m, f);
    return cudaGetLastError();
#endif
  });
}

// kVec elements, loaded and stored as one vector (16 bytes for the widest type).
template <typename E, int kVec>
struct alignas(sizeof(E) * kVec) Pack {
  E v[kVec];
};

template <typename E, int kVec>
__device__ __forceinline__ bool is_vector_aligned(const void* p) {
  return reinterpret_cast<uintptr_t>(p) % (sizeof(E) * kVec) == 0;
}

template <typename E, int kVec, typename T>
__device__ __forceinline__ void load_vector(const void* base, int i, T (&x)[kVec]) {
  const Pack<E, kVec> v = *reinterpret_cast<const Pack<E, kVec>*>(static_cast<const E*>(base) + i);
#pragma unroll
  for (int e = 0; e < kVec; ++e) x[e] = to_opmath(v.v[e]);
}

template <typename E, int kVec, typename T>
__device__ __forceinline__ void store_vector(void* base, int i, const T (&x)[kVec]) {
  Pack<E, kVec> v;
#pragma unroll
  for (int e = 0; e < kVec; ++e) v.v[e] = from_opmath<E>(x[e]);
  *reinterpret_cast<Pack<E, kVec>*>(static_cast<E*>(base) + i) = v;
}

// AMP: after the update the grads are stored multiplied by `factor`
// (1/grad_scale), leaving them unscaled in place as torch's fused optimizers
// do. Run-time (uniform across a launch), so it costs no kernel variants.
template <typename T>
struct GradUnscale {
  bool enabled;
  T factor;
};

// The element loop of one chunk: loads element j of each list into opmath
// registers x[0..kDepth), calls op(x), and stores the lists op may change.
// kRead and kWrite are bit masks of the lists read and written (compile-time,
// so that unused lists cost nothing; an unread list's x starts at 0). Lists
// are of type S, but for the grads and the model params (type G). Where S and
// G differ (fp32 master weights), the model params receive the new params,
// rounded. Where every used pointer is aligned to its vector, loads and stores
// are vectors with a scalar tail; otherwise every element is scalar.
template <unsigned kRead, unsigned kWrite, typename S, typename G, typename Metadata,
          typename Op>
__device__ __forceinline__ void chunk_apply(const Metadata& meta, const ChunkRef& chunk,
                                            const GradUnscale<opmath_t<S>>& unscale, const Op& op) {
  using T = opmath_t<S>;
  static_assert(std::is_same_v<T, opmath_t<G>>, "params and grads must share the opmath type");
  constexpr int kDepth = Metadata::kDepth;
  constexpr int kModelList = kDepth - 1;
  constexpr bool kHasModel = !std::is_same_v<S, G>;
  constexpr unsigned kNarrow = lists(kGradList, kModelList);
  constexpr unsigned kStore = kWrite | (kHasModel ? lists(kModelList) : 0u);
  constexpr unsigned kUsed = kRead | kStore;
  constexpr int kVec = kVectorBytes / sizeof(S);
  const int n = chunk.size;

  void* ptrs[kDepth] = {};
  bool aligned = true;
#pragma unroll
  for (int k = 0; k < kDepth; ++k) {
    if (!((kUsed >> k) & 1u)) continue;
    void* base = meta.addresses[k][chunk.tensor];
    if ((kNarrow >> k) & 1u) {
      ptrs[k] = static_cast<G*>(base) + chunk.begin;
      aligned = aligned && is_vector_aligned<G, kVec>(ptrs[k]);
    } else {
      ptrs[k] = static_cast<S*>(base) + chunk.begin;
      aligned = aligned && is_vector_aligned<S, kVec>(ptrs[k]);
    }
  }
  const int vector_end = aligned ? n - n % kVec : 0;

  // Runs op on one element's registers and copies the new param to the model param.
  auto update = [&](T(&y)[kDepth]) {
    op(y);
    if constexpr (kHasModel) y[kModelList] = y[kParamList];
  };

  for (int i = threadIdx.x * kVec; i < vector_end; i += kBlockThreads * kVec) {
    T x[kDepth][kVec];
#pragma unroll
    for (int k = 0; k < kDepth; ++k) {
      if (!((kRead >> k) & 1u)) {
#pragma unroll
        for (int e = 0; e < kVec; ++e) x[k][e] = T(0);
      } else if ((kNarrow >> k) & 1u) {
        load_vector<G, kVec>(ptrs[k], i, x[k]);
      } else {
        load_vector<S, kVec>(ptrs[k], i, x[k]);
      }
    }
#pragma unroll
    for (int e = 0; e < kVec; ++e) {
      T y[kDepth];
#pragma unroll
      for (int k = 0; k < kDepth; ++k) y[k] = x[k][e];
      update(y);
#pragma unroll
      for (int k = 0; k < kDepth; ++k) x[k][e] = y[k];
    }
#pragma unroll
    for (int k = 0; k < kDepth; ++k) {
      if (!((kStore >> k) & 1u)) continue;
      if ((kNarrow >> k) & 1u)
        store_vector<G, kVec>(ptrs[k], i, x[k]);
      else
        store_vector<S, kVec>(ptrs[k], i, x[k]);
    }
    if (unscale.enabled) {  // the rules take the grad by value: x holds the loaded one
#pragma unroll
      for (int e = 0; e < kVec; ++e) x[kGradList][e] = x[kGradList][e] * unscale.factor;
      store_vector<G, kVec>(ptrs[kGradList], i, x[kGradList]);
    }
  }

  for (int i = vector_end + threadIdx.x; i < n; i += kBlockThreads) {
    T y[kDepth];
#pragma unroll
    for (int k = 0; k < kDepth; ++k) {
      if (!((kRead >> k) & 1u))
        y[k] = T(0);
      else if ((kNarrow >> k) & 1u)
        y[k] = to_opmath(static_cast<const G*>(ptrs[k])[i]);
      else
        y[k] = to_opmath(static_cast<const S*>(ptrs[k])[i]);
    }
    update(y);
#pragma unroll
    for (int k = 0; k < kDepth; ++k) {
      if (!((kStore >> k) & 1u)) continue;
      if ((kNarrow >> k) & 1u)
        static_cast<G*>(ptrs[k])[i] = from_opmath<G>(y[k]);
      else
        static_cast<S*>(ptrs[k])[i] = from_opmath<S>(y[k]);
    }
    if (unscale.enabled)
      static_cast<G*>(ptrs[kGradList])[i] = from_opmath<G>(y[kGradList] * unscale.factor);
  }
}

}  // namespace fused_optim::cuda
