"""Property tests: for random shapes, dtypes and hyperparameters, the fused kernel equals the
reference path (two implementations of the same written rule) within a tight tolerance."""

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from tests.helpers import assert_optimizers_close, run_lockstep
from tests.optim_db import CLASSES, info_of

# Both paths compute in the param's precision with a different order of operations; a few steps
# leave them a few ulps apart.
FUSED_VS_REFERENCE_TOL = {torch.float32: 1e-6, torch.float64: 1e-13}

# Empty tensors, or at least 8 elements: the relative difference of a tensor is taken against its
# largest element, and a 1-element tensor whose value is a near-cancellation (p - lr*d ~ 0) has no
# meaningful scale. Size 1 is covered by the parity tests.
shape = st.lists(st.integers(0, 9), min_size=0, max_size=3).map(tuple)
shapes = st.lists(shape.filter(lambda s: math.prod(s) == 0 or math.prod(s) >= 8), min_size=1, max_size=3)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: cls.__name__)
@given(
    data=st.data(),
    shape_list=shapes,
    dtype=st.sampled_from([torch.float32, torch.float64]),
    steps=st.integers(1, 4),
    tensor_lr=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_fused_equals_reference(cls, data, shape_list, dtype, steps, tensor_lr, seed):
    kwargs = data.draw(info_of(cls).hyperparameters, label="hyperparameters")
    gen = torch.Generator().manual_seed(seed)
    params = [torch.randn(s, generator=gen, dtype=dtype) for s in shape_list]
    lr = kwargs.pop("lr")
    fused = cls([p.clone() for p in params], lr=torch.tensor(lr) if tensor_lr else lr, **kwargs, fused=True)
    reference = cls(
        [p.clone() for p in params], lr=torch.tensor(lr) if tensor_lr else lr, **kwargs, fused=False
    )
    run_lockstep([fused, reference], steps, seed=seed)
    assert_optimizers_close(fused, reference, FUSED_VS_REFERENCE_TOL[dtype])
