// Host-only test of the multi-tensor launcher's packing (pack_chunks): with
// small capacities, every chunk of every non-empty tensor must be handed to
// exactly one block, with its tensor's address, size and step, and no launch
// may overflow its tensor slots or block map. Needs nvcc, no GPU: run by
// tests/test_cuda_compile.py.
#include <cstdio>
#include <map>
#include <random>
#include <tuple>
#include <vector>

#include "../../csrc/cuda/multi_tensor_apply.cuh"

using namespace fused_optim;
using namespace fused_optim::cuda;

template <int kTensors, int kBlocks>
struct SmallMetadata {
  static constexpr int kDepth = 2;
  static constexpr bool kHasStep = true;
  static constexpr int kMaxTensors = kTensors;
  static constexpr int kMaxBlocks = kBlocks;
  void* addresses[kDepth][kMaxTensors];
  int64_t numel[kMaxTensors];
  const float* steps[kMaxTensors];
  int32_t block_to_chunk[kMaxBlocks];
  uint16_t block_to_tensor[kMaxBlocks];
};

// Fake, distinct addresses: only compared, never dereferenced.
void* fake_address(int list, int64_t tensor) {
  return reinterpret_cast<void*>(static_cast<uintptr_t>((tensor + 1) * 4096 + list * 16));
}

template <int kTensors, int kBlocks>
bool check(const std::vector<int64_t>& sizes) {
  using Meta = SmallMetadata<kTensors, kBlocks>;
  std::vector<TensorPtrs<2>> tensors(sizes.size());
  for (size_t i = 0; i < sizes.size(); ++i) {
    tensors[i] = {{fake_address(0, i), fake_address(1, i)},
                  sizes[i],
                  reinterpret_cast<const float*>(fake_address(2, i))};
  }
  std::map<std::pair<void*, int64_t>, int> seen;  // (address, chunk) -> times
  bool ok = true;
  int launches = 0;
  Meta meta;
  const cudaError_t err = pack_chunks(
      Span<TensorPtrs<2>>{tensors.data(), static_cast<int64_t>(tensors.size())}, meta,
      [&](const Meta& m, int blocks) {
        ++launches;
        if (blocks < 1 || blocks > kBlocks) ok = false;
        for (int b = 0; b < blocks; ++b) {
          const int slot = m.block_to_tensor[b];
          if (slot >= kTensors) {
            ok = false;
            continue;
          }
          // Which tensor is it? Addresses are unique per tensor.
          const int64_t i = reinterpret_cast<uintptr_t>(m.addresses[0][slot]) / 4096 - 1;
          if (i < 0 || i >= static_cast<int64_t>(sizes.size()) ||
              m.addresses[1][slot] != fake_address(1, i) || m.numel[slot] != sizes[i] ||
              m.steps[slot] != reinterpret_cast<const float*>(fake_address(2, i)) ||
              static_cast<int64_t>(m.block_to_chunk[b]) * kChunkElements >= sizes[i]) {
            ok = false;
            continue;
          }
          ++seen[{m.addresses[0][slot], m.block_to_chunk[b]}];
        }
        return cudaSuccess;
      });
  if (err != cudaSuccess) ok = false;
  size_t expected = 0;
  for (size_t i = 0; i < sizes.size(); ++i) {
    const int64_t chunks = (sizes[i] + kChunkElements - 1) / kChunkElements;
    expected += chunks;
    for (int64_t c = 0; c < chunks; ++c)
      if (seen[{fake_address(0, i), c}] != 1) ok = false;
  }
  if (seen.size() != expected) ok = false;
  std::printf("%-4s capacity %3d tensors x %4d blocks, %5zu tensors, %7zu chunks, %6d launches\n",
              ok ? "ok" : "FAIL", kTensors, kBlocks, sizes.size(), expected, launches);
  return ok;
}

template <int kTensors, int kBlocks>
bool check_all() {
  const int64_t chunk = kChunkElements;
  std::mt19937_64 rng(kTensors * 1000 + kBlocks);
  std::vector<int64_t> odd = {0,         1, 7,         4097,          chunk - 1, chunk,
                              chunk + 1, 0, 3 * chunk, (1 << 20) + 3, 0};
  std::vector<int64_t> many(3000);
  for (auto& n : many) n = static_cast<int64_t>(rng() % (3 * chunk));
  std::vector<int64_t> huge = {5, (int64_t{1} << 31) + 5, 1};  // over 2^31 elements: 64-bit offsets
  bool ok = check<kTensors, kBlocks>(odd) && check<kTensors, kBlocks>(many) &&
            check<kTensors, kBlocks>({}) && check<kTensors, kBlocks>({0, 0});
  if (kBlocks >= 4) ok = check<kTensors, kBlocks>(huge) && ok;
  return ok;
}

int main() {
  bool ok = check_all<1, 1>() && check_all<1, 5>() && check_all<3, 5>() && check_all<4, 2>() &&
            check_all<256, 2048>();
  // The production capacities: the operators with step counts (adam, rmsprop,
  // diffgrad) and momentum, which has none.
  constexpr int kDepth = adam_list::kCount;
  static_assert(int{rmsprop_list::kCount} == kDepth && int{diffgrad_list::kCount} == kDepth);
  using WithSteps = TensorListMetadata<kDepth, true>;
  using NoSteps = TensorListMetadata<momentum_list::kCount, false>;
  std::printf(
      "launch capacity: depth %d + steps %d tensors x %d blocks (%zu bytes); depth %d %d x %d (%zu "
      "bytes)\n",
      WithSteps::kDepth, WithSteps::kMaxTensors, WithSteps::kMaxBlocks, sizeof(WithSteps),
      NoSteps::kDepth, NoSteps::kMaxTensors, NoSteps::kMaxBlocks, sizeof(NoSteps));
  ok = ok && check_all<WithSteps::kMaxTensors, WithSteps::kMaxBlocks>() &&
       check_all<NoSteps::kMaxTensors, NoSteps::kMaxBlocks>();
  std::printf(ok ? "all ok\n" : "FAILED\n");
  return ok ? 0 : 1;
}
