// Every backend walks one param's tensors as flat arrays in the same element
// order. Tensors that cannot be walked so (strided views, mismatched layouts)
// are updated through contiguous copies, written back afterwards.
#pragma once

#include <ATen/ATen.h>

#include <array>
#include <optional>
#include <utility>
#include <vector>

namespace fused_optim {

// True when every tensor of param i can be walked as one flat array with the
// same element order (contiguous, or dense with identical strides). An empty
// list is unused.
template <size_t N>
bool flat_compatible(const std::array<std::vector<at::Tensor>, N>& lists, size_t i) {
  const at::Tensor& p = lists[0][i];
  if (!p.is_non_overlapping_and_dense()) return false;
  for (const auto& list : lists) {
    if (list.empty()) continue;
    const at::Tensor& t = list[i];
    if (!t.is_non_overlapping_and_dense() || t.strides() != p.strides()) return false;
  }
  return true;
}

// The contiguous copies a call made, to be written back once it has updated them.
class DenseCopies {
 public:
  // Unless param i's tensors are flat_compatible, replaces each of them in
  // `lists` by a contiguous copy; those of the lists flagged in `mutated` are
  // written back by copy_back(). The copies live as long as `lists`.
  template <size_t N>
  void make_flat(std::array<std::vector<at::Tensor>, N>& lists, const std::array<bool, N>& mutated,
                 size_t i) {
    if (lists[0][i].numel() == 0 || flat_compatible(lists, i)) return;
    for (size_t k = 0; k < N; ++k) {
      if (lists[k].empty()) continue;
      at::Tensor& t = lists[k][i];
      at::Tensor dense = t.contiguous();
      if (mutated[k] && !dense.is_same(t)) pending_.emplace_back(t, dense);
      t = dense;
    }
  }

  void copy_back() {
    for (auto& [original, dense] : pending_) original.copy_(dense);
    pending_.clear();
  }

 private:
  std::vector<std::pair<at::Tensor, at::Tensor>> pending_;
};

// An operator's optional model_params (fp32 master weights) as a list: empty without them.
inline std::vector<at::Tensor> model_list(const std::optional<at::TensorList>& model_params) {
  return model_params.has_value() ? model_params->vec() : std::vector<at::Tensor>{};
}

}  // namespace fused_optim
