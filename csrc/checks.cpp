#include "checks.h"

#include <ATen/MemoryOverlap.h>

#include <algorithm>
#include <cstdint>
#include <tuple>

namespace fused_optim {

namespace {

void check_list_length(const char* op, at::TensorList params, const char* name, at::TensorList list) {
  TORCH_CHECK(list.size() == params.size(), op, ": ", name, " has ", list.size(),
              " tensors but params has ", params.size());
}

// t (list `name`, entry i) lies where params[i] does, with its shape and the expected dtype.
void check_like(const char* op, const char* name, size_t i, const at::Tensor& t, const at::Tensor& p,
                at::ScalarType dtype, const char* dtype_of) {
  TORCH_CHECK(!t.is_sparse(), op, ": ", name, "[", i,
              "] is sparse; sparse gradients are not supported");
  TORCH_CHECK(t.scalar_type() == dtype, op, ": ", name, "[", i, "] has dtype ", t.scalar_type(),
              " but ", dtype_of, "[", i, "] has ", dtype);
  TORCH_CHECK(t.device() == p.device(), op, ": ", name, "[", i, "] is on ", t.device(),
              " but params[", i, "] is on ", p.device());
  TORCH_CHECK(t.sizes() == p.sizes(), op, ": ", name, "[", i, "] has shape ", t.sizes(),
              " but params[", i, "] has shape ", p.sizes());
}

// Not at::isFloatingType, which admits the float8 types.
bool is_supported_dtype(at::ScalarType t) {
  return t == at::kDouble || t == at::kFloat || t == at::kBFloat16 || t == at::kHalf;
}

void check_state_steps(const char* op, at::TensorList params, at::TensorList state_steps) {
  TORCH_CHECK(state_steps.size() == params.size(), op, ": state_steps has ", state_steps.size(),
              " tensors but params has ", params.size());
  for (size_t i = 0; i < state_steps.size(); ++i) {
    const at::Tensor& step = state_steps[i];
    TORCH_CHECK(step.numel() == 1, op, ": state_steps[", i, "] must hold one element, got shape ",
                step.sizes());
    TORCH_CHECK(step.scalar_type() == at::kFloat || step.scalar_type() == at::kDouble, op,
                ": state_steps[", i, "] has dtype ", step.scalar_type(),
                "; step counts are float32 (as torch.optim keeps them) or float64");
  }
}

// One tensor of a call, as the overlap check sees it: the bytes it spans in its storage.
struct Extent {
  const void* storage;
  uintptr_t begin;
  uintptr_t end;
  const char* list;
  size_t index;
  bool written;
};

// The byte range from t's first element to its last (strides are never negative).
Extent extent_of(const at::Tensor& t, const char* list, size_t index, bool written) {
  const auto item = static_cast<uintptr_t>(t.element_size());
  uintptr_t span = 1;
  for (int64_t d = 0; d < t.dim(); ++d) span += static_cast<uintptr_t>((t.size(d) - 1) * t.stride(d));
  const auto begin = static_cast<uintptr_t>(t.storage_offset()) * item;
  return {t.storage().data(), begin, begin + span * item, list, index, written};
}

// Every tensor the call writes must have memory of its own: two tensors over
// the same bytes would be updated by two threads (or CUDA blocks) at once, and
// the result would change from run to run. Overlap is judged by byte ranges,
// so views into one flat buffer (FSDP2's gradients) pass; two views
// interleaved by strides are refused too, though they do not share an element.
void check_no_overlap(const char* op, const std::vector<NamedList>& lists,
                      const std::vector<bool>& written) {
  std::vector<Extent> extents;
  size_t count = 0;
  for (const auto& list : lists) count += list.tensors.size();
  extents.reserve(count);
  for (size_t k = 0; k < lists.size(); ++k) {
    for (size_t i = 0; i < lists[k].tensors.size(); ++i) {
      const at::Tensor& t = lists[k].tensors[i];
      if (t.numel() == 0 || !t.has_storage()) continue;
      TORCH_CHECK(!written[k] || at::has_internal_overlap(t) != at::MemOverlap::Yes, op, ": ",
                  lists[k].name, "[", i, "] has elements that share memory (an expanded tensor?), "
                  "but the step writes it; pass a tensor of its own (e.g. .clone())");
      extents.push_back(extent_of(t, lists[k].name, i, written[k]));
    }
  }
  // Tensors of distinct storages cannot overlap: in the usual call every tensor has a storage of
  // its own, which sorting the storage pointers alone shows at a fraction of the cost of sorting
  // the extents (a call on 4096 small params spent a sixth of its time in that sort).
  std::vector<const void*> storages;
  storages.reserve(extents.size());
  for (const Extent& e : extents) storages.push_back(e.storage);
  std::sort(storages.begin(), storages.end());
  if (std::adjacent_find(storages.begin(), storages.end()) == storages.end()) return;
  std::sort(extents.begin(), extents.end(), [](const Extent& a, const Extent& b) {
    return std::tie(a.storage, a.begin) < std::tie(b.storage, b.begin);
  });
  const Extent* reach = nullptr;          // the extent reaching furthest in this storage
  const Extent* written_reach = nullptr;  // the same among the written ones
  for (const Extent& e : extents) {
    if (reach != nullptr && reach->storage != e.storage) reach = written_reach = nullptr;
    const Extent* other = nullptr;
    if (written_reach != nullptr && e.begin < written_reach->end) other = written_reach;
    else if (e.written && reach != nullptr && e.begin < reach->end) other = reach;
    TORCH_CHECK(other == nullptr, op, ": ", e.list, "[", e.index, "] and ", other->list, "[",
                other->index, "] overlap in memory, and the step writes at least one of them (the "
                "same tensor twice in one call, or two params over one storage?); each tensor a "
                "step writes needs memory of its own");
    if (reach == nullptr || e.end > reach->end) reach = &e;
    if (e.written && (written_reach == nullptr || e.end > written_reach->end)) written_reach = &e;
  }
}

// Every list has one tensor per param, of the param's shape and device, and no
// tensor is sparse or complex. Dtypes: the states have the params' dtype; the
// grads too, unless model_params is given (fp32 master weights): then params
// are float32, model_params bf16/fp16 of the same shape and device, and the
// grads have the model params' dtype. No tensor that the call writes overlaps
// another tensor of the call, or itself (an expanded tensor): the grads are
// written when grads_written (AMP unscaling), the params, states, step counts
// and model params always.
void check_lists(const char* op, at::TensorList params, at::TensorList grads,
                 const OptionalTensorList& model_params, const std::vector<NamedList>& states,
                 at::TensorList state_steps, bool grads_written) {
  check_list_length(op, params, "grads", grads);
  if (model_params.has_value()) check_list_length(op, params, "model_params", *model_params);
  for (const auto& list : states)
    if (list.required || !list.tensors.empty()) check_list_length(op, params, list.name, list.tensors);
  for (size_t i = 0; i < params.size(); ++i) {
    const at::Tensor& p = params[i];
    TORCH_CHECK(!p.is_sparse(), op, ": params[", i, "] is sparse; sparse params are not supported");
    TORCH_CHECK(is_supported_dtype(p.scalar_type()), op, ": params[", i,
                "] has dtype ", p.scalar_type(),
                "; supported are float64, float32, bfloat16 and float16");
    if (model_params.has_value()) {
      const at::Tensor& m = (*model_params)[i];
      TORCH_CHECK(p.scalar_type() == at::kFloat, op, ": params[", i, "] has dtype ",
                  p.scalar_type(), "; with model_params the params are float32 master weights");
      TORCH_CHECK(m.scalar_type() == at::kBFloat16 || m.scalar_type() == at::kHalf, op,
                  ": model_params[", i, "] has dtype ", m.scalar_type(),
                  "; fp32 master weights are kept for bfloat16 and float16 params only");
      check_like(op, "model_params", i, m, p, m.scalar_type(), "model_params");
      check_like(op, "grads", i, grads[i], p, m.scalar_type(), "model_params");
    } else {
      check_like(op, "grads", i, grads[i], p, p.scalar_type(), "params");
    }
    for (const auto& list : states)
      if (!list.tensors.empty())
        check_like(op, list.name, i, list.tensors[i], p, p.scalar_type(), "params");
  }
  std::vector<NamedList> all{{"params", params, true}, {"grads", grads, true}};
  std::vector<bool> written{true, grads_written};
  for (const auto& list : states) {
    all.push_back(list);
    written.push_back(true);
  }
  if (!state_steps.empty()) {
    all.push_back({"state_steps", state_steps, true});
    written.push_back(true);
  }
  if (model_params.has_value()) {
    all.push_back({"model_params", *model_params, true});
    written.push_back(true);
  }
  check_no_overlap(op, all, written);
}

void check_scalar_tensor(const char* op, const char* name, const std::optional<at::Tensor>& t) {
  if (!t.has_value()) return;
  TORCH_CHECK(t->numel() == 1, op, ": ", name, " must hold one element, got shape ", t->sizes());
}

}  // namespace

void OpCall::check() const {
  if (state_steps.has_value()) check_state_steps(op, params, *state_steps);
  for (const NamedList& list : states)
    TORCH_CHECK(!(list.required && list.tensors.empty() && !list.required_because.empty() &&
                  !params.empty()),
                op, ": ", list.required_because);
  check_lists(op, params, grads, model_params, states, state_steps.value_or(at::TensorList{}),
              grad_scale.has_value());
  check_scalar_tensor(op, "lr_tensor", lr_tensor);
  check_scalar_tensor(op, "grad_scale", grad_scale);
  check_scalar_tensor(op, "found_inf", found_inf);
}

void OpCall::bump_versions() const {
  auto bump = [](at::TensorList list) {
    for (const at::Tensor& t : list) t.unsafeGetTensorImpl()->bump_version();
  };
  bump(params);
  for (const NamedList& list : states) bump(list.tensors);
  if (state_steps.has_value()) bump(*state_steps);
  if (grad_scale.has_value()) bump(grads);  // unscaled in place (AMP)
  if (model_params.has_value()) bump(*model_params);
}

}  // namespace fused_optim
