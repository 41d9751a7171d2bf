"""Property tests: for random shapes, dtypes and hyperparameters, the fused kernel equals the
reference path (two implementations of the same written rule) within a tight tolerance."""

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from optimizers import Adam, AdamW, DiffGrad, Momentum, RMSProp
from tests.helpers import assert_optimizers_close, run_lockstep

# Both paths compute in the param's precision with a different order of operations; a few steps
# leave them a few ulps apart.
FUSED_VS_REFERENCE_TOL = {torch.float32: 1e-6, torch.float64: 1e-13}

unit = st.one_of(st.sampled_from([0.0, 0.5, 0.9, 0.99]), st.floats(0.0, 0.99))
# The betas and alphas people use (0.99, 0.999, 0.9999) besides arbitrary ones.
near_one = st.one_of(st.sampled_from([0.99, 0.999, 0.9999]), st.floats(0.5, 0.9999))
common = dict(lr=st.floats(1e-4, 0.1), weight_decay=st.sampled_from([0.0, 1e-3, 0.1]), maximize=st.booleans())
adam_like = dict(common, betas=st.tuples(unit, near_one), eps=st.sampled_from([1e-8, 1e-6, 1e-3]))


@st.composite
def momentum_kwargs(draw):
    kwargs = draw(
        st.fixed_dictionaries(
            dict(common, momentum=st.sampled_from([0.0, 0.5, 0.9, 0.99]), nesterov=st.booleans())
        )
    )
    if kwargs["nesterov"] and kwargs["momentum"] > 0:
        kwargs["dampening"] = 0.0
    else:
        kwargs["nesterov"] = False
        kwargs["dampening"] = draw(st.floats(0.0, 1.0))
    return kwargs


HYPERPARAMETERS = {
    Momentum: momentum_kwargs(),
    # alpha >= 0.5: for alpha -> 0 centered RMSProp's v - gbar^2 is pure cancellation (0 up to rounding).
    RMSProp: st.fixed_dictionaries(
        dict(
            common,
            alpha=near_one,
            eps=st.sampled_from([1e-8, 1e-3]),
            momentum=st.sampled_from([0.0, 0.9]),
            centered=st.booleans(),
        )
    ),
    Adam: st.fixed_dictionaries(dict(adam_like, amsgrad=st.booleans(), bias_correction=st.booleans())),
    AdamW: st.fixed_dictionaries(dict(adam_like, amsgrad=st.booleans(), bias_correction=st.booleans())),
    DiffGrad: st.fixed_dictionaries(adam_like),
}

# Empty tensors, or at least 8 elements: the relative difference of a tensor is taken against its
# largest element, and a 1-element tensor whose value is a near-cancellation (p - lr*d ~ 0) has no
# meaningful scale. Size 1 is covered by the parity tests.
shape = st.lists(st.integers(0, 9), min_size=0, max_size=3).map(tuple)
shapes = st.lists(shape.filter(lambda s: math.prod(s) == 0 or math.prod(s) >= 8), min_size=1, max_size=3)


@pytest.mark.parametrize("cls", list(HYPERPARAMETERS), ids=lambda cls: cls.__name__)
@given(
    data=st.data(),
    shape_list=shapes,
    dtype=st.sampled_from([torch.float32, torch.float64]),
    steps=st.integers(1, 4),
    tensor_lr=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_fused_equals_reference(cls, data, shape_list, dtype, steps, tensor_lr, seed):
    kwargs = data.draw(HYPERPARAMETERS[cls], label="hyperparameters")
    gen = torch.Generator().manual_seed(seed)
    params = [torch.randn(s, generator=gen, dtype=dtype) for s in shape_list]
    lr = kwargs.pop("lr")
    fused = cls([p.clone() for p in params], lr=torch.tensor(lr) if tensor_lr else lr, **kwargs, fused=True)
    reference = cls(
        [p.clone() for p in params], lr=torch.tensor(lr) if tensor_lr else lr, **kwargs, fused=False
    )
    run_lockstep([fused, reference], steps, seed=seed)
    assert_optimizers_close(fused, reference, FUSED_VS_REFERENCE_TOL[dtype])
