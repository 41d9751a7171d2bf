"""The operators torch.ops.optimizers.* called directly: input errors that show the bad values,
torch.library.opcheck (schema, fake tensors, autograd registration, AOT dispatch), and the registered
schemas as the one source of every operator's signature (optimizers/reference.py must match them).
The operators come from the dispatcher (optimizers._extension.OPERATORS), their list and keyword
names from their schemas; only the values of a valid call are written by hand, in tests/optim_db.py."""

import inspect
import math
import re

import pytest
import torch

import optimizers
from optimizers import reference
from optimizers._extension import OPERATORS
from tests.optim_db import OPTIM_DB, operator_call

pytestmark = pytest.mark.skipif(not optimizers.extension_available(), reason="optimizers._C is not built")

SHAPES = [(5,), (2, 3)]
# Shapes that cover the CPU fp16 loop's staging (csrc/cpu/multi_tensor_cpu.h): several blocks of 512
# elements, tails shorter than a vector of 8, and more than one chunk of 2^16 elements.
LONG_SHAPES = [(5,), (3, 1500), (65543,)]


def schema(name: str) -> torch.FunctionSchema:
    return getattr(torch.ops.optimizers, name).default._schema


def list_names(name: str) -> list[str]:
    """The operator's tensor lists, in schema order: its positional arguments."""
    return [arg.name for arg in schema(name).arguments if not arg.kwarg_only]


def required_keywords(name: str) -> set[str]:
    """The keyword-only arguments without a default (the optional ones: lr_tensor, AMP, master weights)."""
    return {arg.name for arg in schema(name).arguments if arg.kwarg_only and not arg.has_default_value()}


def valid_call(name: str, device: str = "cpu", shapes=SHAPES) -> tuple[dict, dict]:
    """Named list arguments and keyword arguments of a small valid call, with state a real run could
    hold (squares positive, centered RMSProp's variance positive), so no result is NaN."""
    gen = torch.Generator().manual_seed(0)
    values = operator_call(name)
    lists = {}
    for arg in list_names(name):
        if arg == "state_steps":
            lists[arg] = [torch.tensor(3.0) for _ in shapes]
        else:
            tensors = [torch.randn(s, generator=gen) for s in shapes]
            if arg in values.values:
                tensors = [values.values[arg](t) for t in tensors]
            lists[arg] = tensors
    lists = {arg: [t.to(device) for t in tensors] for arg, tensors in lists.items()}
    return lists, dict(values.kwargs)


def call(name, lists, kwargs):
    getattr(torch.ops.optimizers, name)(*lists.values(), **kwargs)


def _replace(arg, index, tensor):
    def mutate(lists, kwargs):
        lists[arg][index] = tensor

    return mutate


def _set(arg, value):
    def mutate(lists, kwargs):
        (lists if arg in lists else kwargs)[arg] = value

    return mutate


def _both(*mutations):
    def mutate(lists, kwargs):
        for m in mutations:
            m(lists, kwargs)

    return mutate


# -- the schemas: one source of every operator's signature --------------------------------------
def test_the_registered_operators_are_those_of_the_optimizer_classes():
    """The dispatcher's list (which drives every parametrization over operators) against an independent
    one: the operators the classes of tests/optim_db.py call. Each has one valid call in the db."""
    assert set(OPERATORS) == {info.cls.op_name for info in OPTIM_DB}
    for name in OPERATORS:
        assert sum(info.op_call is not None for info in OPTIM_DB if info.cls.op_name == name) == 1, name


@pytest.mark.parametrize("name", OPERATORS)
def test_valid_call_gives_exactly_the_required_keywords(name):
    """The hand-written values of tests/optim_db.py name every required keyword argument and no
    other, and shape only lists the operator has; the positional arguments are all tensor lists."""
    call_values = operator_call(name)
    assert set(call_values.kwargs) == required_keywords(name)
    assert set(call_values.values) <= set(list_names(name))
    assert all(str(arg.type) == "List[Tensor]" for arg in schema(name).arguments if not arg.kwarg_only)


def schema_signature(name: str) -> list[tuple]:
    """(name, kind, default) of each argument as the operator's schema declares it."""
    kinds = {False: inspect.Parameter.POSITIONAL_OR_KEYWORD, True: inspect.Parameter.KEYWORD_ONLY}
    return [
        (
            arg.name,
            kinds[arg.kwarg_only],
            arg.default_value if arg.has_default_value() else inspect.Parameter.empty,
        )
        for arg in schema(name).arguments
    ]


def python_signature(func) -> list[tuple]:
    return [(p.name, p.kind, p.default) for p in inspect.signature(func).parameters.values()]


@pytest.mark.parametrize("name", OPERATORS)
def test_reference_has_the_schemas_signature(name):
    """The reference path is called exactly as the operator: same argument names in the same order,
    the same keyword-only split, the same defaults."""
    assert python_signature(getattr(reference, name)) == schema_signature(name)


def test_reference_implements_exactly_the_registered_operators():
    """Its public functions named like operators (trailing underscore) are the registered ones."""
    named_like_operators = {
        name
        for name, f in vars(reference).items()
        if inspect.isfunction(f) and f.__module__ == reference.__name__ and name.endswith("_")
        if not name.startswith("_")
    }
    assert named_like_operators == set(OPERATORS)


def _with_signature(signature: inspect.Signature):
    def func(*args, **kwargs):
        pass

    func.__signature__ = signature
    return func


def test_the_signature_check_sees_every_kind_of_difference():
    """Swapped arguments, a keyword-only argument made positional, another default, a missing one:
    each makes the comparison above fail."""
    name = OPERATORS[0]
    signature = inspect.signature(getattr(reference, name))
    params = list(signature.parameters.values())
    keyword = next(i for i, p in enumerate(params) if p.kind is inspect.Parameter.KEYWORD_ONLY)
    optional = next(i for i, p in enumerate(params) if p.default is not inspect.Parameter.empty)
    changed = {
        "swapped": [params[1], params[0], *params[2:]],
        "made positional": [
            *params[:keyword],
            params[keyword].replace(kind=inspect.Parameter.POSITIONAL_OR_KEYWORD),
            *params[keyword + 1 :],
        ],
        "another default": [
            *params[:optional],
            params[optional].replace(default=0.5),
            *params[optional + 1 :],
        ],
        "missing": params[:-1],
    }
    for what, variant in changed.items():
        func = _with_signature(signature.replace(parameters=variant))
        assert python_signature(func) != schema_signature(name), what


BAD_CALLS = [
    (
        "adam_",
        _both(
            _replace("params", 0, torch.zeros(5, dtype=torch.float8_e4m3fn)),
            _replace("grads", 0, torch.zeros(5, dtype=torch.float8_e4m3fn)),
        ),
        "optimizers::adam_: params[0] has dtype Float8_e4m3fn; supported are float64, float32, bfloat16",
    ),
    ("adam_", _set("grads", [torch.zeros(5)]), "optimizers::adam_: grads has 1 tensors but params has 2"),
    (
        "adam_",
        _replace("exp_avgs", 1, torch.zeros(2, 3, dtype=torch.float64)),
        "optimizers::adam_: exp_avgs[1] has dtype Double but params[1] has Float",
    ),
    (
        "adam_",
        _replace("exp_avg_sqs", 0, torch.zeros(4)),
        "optimizers::adam_: exp_avg_sqs[0] has shape [4] but params[0] has shape [5]",
    ),
    (
        "adam_",
        _set("state_steps", [torch.tensor(1.0)] * 3),
        "optimizers::adam_: state_steps has 3 tensors but params has 2",
    ),
    (
        "adam_",
        _replace("state_steps", 1, torch.ones(2)),
        "optimizers::adam_: state_steps[1] must hold one element, got shape [2]",
    ),
    (
        "adam_",
        _set("max_exp_avg_sqs", []),
        "optimizers::adam_: max_exp_avg_sqs has 0 tensors but params has 2",
    ),
    (
        "adam_",
        _set("lr_tensor", torch.ones(2)),
        "optimizers::adam_: lr_tensor must hold one element, got shape [2]",
    ),
    (
        "adam_",
        _set("grad_scale", torch.ones(1, 3)),
        "optimizers::adam_: grad_scale must hold one element, got shape [1, 3]",
    ),
    (
        "momentum_",
        _set("momentum_buffers", []),
        "optimizers::momentum_: momentum 0.9 needs one momentum buffer per param",
    ),
    (
        "momentum_",
        _replace("params", 0, torch.zeros(5, dtype=torch.int64)),
        "optimizers::momentum_: params[0] has dtype Long; supported are float64, float32, bfloat16 and "
        "float16",
    ),
    ("rmsprop_", _set("grad_avgs", []), "optimizers::rmsprop_: grad_avgs has 0 tensors but params has 2"),
    (
        "diffgrad_",
        _replace("previous_grads", 0, torch.zeros(5, dtype=torch.float16)),
        "optimizers::diffgrad_: previous_grads[0] has dtype Half but params[0] has Float",
    ),
    (
        "diffgrad_",
        _set("exp_avgs", [torch.zeros(5)] * 3),
        "optimizers::diffgrad_: exp_avgs has 3 tensors but params has 2",
    ),
    # fp32 master weights: params are float32 masters, grads have the model params' dtype.
    (
        "adam_",
        _set("model_params", [torch.zeros(5, dtype=torch.bfloat16)]),
        "optimizers::adam_: model_params has 1 tensors but params has 2",
    ),
    (
        "adam_",
        _set("model_params", [torch.zeros(s) for s in SHAPES]),
        "optimizers::adam_: model_params[0] has dtype Float; fp32 master weights are kept for bfloat16 and "
        "float16 params only",
    ),
    (
        "rmsprop_",
        _set("model_params", [torch.zeros(s, dtype=torch.bfloat16) for s in SHAPES]),
        "optimizers::rmsprop_: grads[0] has dtype Float but model_params[0] has BFloat16",
    ),
    (
        "momentum_",
        _both(
            _set("grads", [torch.zeros(s, dtype=torch.float16) for s in SHAPES]),
            _set("model_params", [torch.zeros(shape, dtype=torch.float16) for shape in [(5,), (3, 2)]]),
        ),
        "optimizers::momentum_: model_params[1] has shape [3, 2] but params[1] has shape [2, 3]",
    ),
]


@pytest.mark.parametrize(
    "name, mutate, message",
    [pytest.param(*bad, id=f"{bad[0]}: {bad[2].split(': ', 1)[1]}") for bad in BAD_CALLS],
)
def test_bad_inputs_raise_with_the_values(name, mutate, message):
    lists, kwargs = valid_call(name)
    mutate(lists, kwargs)
    before = {arg: [t.clone() for t in lists[arg]] for arg in ("params", "state_steps") if arg in lists}
    with pytest.raises(RuntimeError, match=re.escape(message)):
        call(name, lists, kwargs)
    # Checks run before any write: a rejected call leaves the params and step counts alone.
    for arg, tensors in before.items():
        assert all(torch.equal(a, b) for a, b in zip(lists[arg], tensors, strict=True)), arg


@pytest.mark.parametrize("name", OPERATORS)
def test_valid_call_updates_params(name):
    lists, kwargs = valid_call(name)
    before = [p.clone() for p in lists["params"]]
    call(name, lists, kwargs)
    assert all(not torch.equal(a, b) for a, b in zip(lists["params"], before, strict=True))


def master_weights_call(name: str, dtype: torch.dtype, device: str = "cpu") -> tuple[dict, dict]:
    """valid_call with fp32 master weights: the float32 params are masters of model params of
    `dtype` (their values rounded), and the grads have that dtype."""
    lists, kwargs = valid_call(name, device, LONG_SHAPES)
    lists["grads"] = [g.to(dtype) for g in lists["grads"]]
    kwargs["model_params"] = [p.to(dtype) for p in lists["params"]]
    return lists, kwargs


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bf16", "fp16"])
@pytest.mark.parametrize("name", OPERATORS)
def test_master_weights_call_is_the_fp32_call_rounded_into_the_model_params(name, dtype):
    """With model_params the update of masters and state is the float32 call's, on the same grad
    values, bit for bit; each model param then holds its master rounded once."""
    lists, kwargs = master_weights_call(name, dtype)
    plain = {arg: [t.clone() for t in tensors] for arg, tensors in lists.items()}
    plain["grads"] = [g.float() for g in lists["grads"]]
    plain_kwargs = {k: v for k, v in kwargs.items() if k != "model_params"}
    call(name, lists, kwargs)
    call(name, plain, plain_kwargs)
    assert all(p.isfinite().all() for p in plain["params"])
    for arg in lists:
        if arg != "grads":
            assert all(torch.equal(a, b) for a, b in zip(lists[arg], plain[arg], strict=True)), arg
    for model, master in zip(kwargs["model_params"], lists["params"], strict=True):
        assert model.dtype == dtype
        assert torch.equal(model, master.to(dtype))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bf16", "fp16"])
@pytest.mark.parametrize("name", OPERATORS)
def test_low_precision_call_is_the_fp32_call_rounded(name, dtype):
    """bf16/fp16 params and state are computed in float32 and each stored value is rounded once: the
    call equals the float32 call on the same values, rounded, bit for bit."""
    lists, kwargs = valid_call(name, shapes=LONG_SHAPES)
    low = {arg: [t if arg == "state_steps" else t.to(dtype) for t in ts] for arg, ts in lists.items()}
    plain = {arg: [t.float().clone() for t in ts] for arg, ts in low.items()}
    call(name, low, kwargs)
    call(name, plain, kwargs)
    assert all(p.isfinite().all() for p in plain["params"])
    for arg in low:
        expected = [t if arg == "state_steps" else t.to(dtype) for t in plain[arg]]
        assert all(torch.equal(a, b) for a, b in zip(low[arg], expected, strict=True)), arg


OPCHECK_CALLS = [pytest.param(name, {}, id=name) for name in OPERATORS] + [
    pytest.param(
        "adam_",
        dict(lr_tensor=torch.tensor(1e-3), grad_scale=torch.tensor(8.0), found_inf=torch.tensor(0.0)),
        id="adam_ with lr_tensor, grad_scale, found_inf",
    ),
    pytest.param("momentum_", dict(first_step=True, nesterov=True), id="momentum_ first step, nesterov"),
]


DEVICES = [
    "cpu",
    pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")),
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name, extra", OPCHECK_CALLS)
def test_opcheck(name, extra, device):
    """Each backend's kernel under opcheck; on CUDA the scalar tensors live on the device too."""
    lists, kwargs = valid_call(name, device)
    kwargs.update({k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in extra.items()})
    op = getattr(torch.ops.optimizers, name).default
    torch.library.opcheck(op, tuple(lists.values()), kwargs)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", OPERATORS)
def test_opcheck_master_weights(name, device):
    lists, kwargs = master_weights_call(name, torch.bfloat16, device)
    op = getattr(torch.ops.optimizers, name).default
    torch.library.opcheck(op, tuple(lists.values()), kwargs)


# -- the direct calls (optimizers._C.direct, csrc/direct_call.h), which the classes' steps use ----
def test_every_operator_has_a_direct_call():
    direct = {name for name in dir(optimizers._C.direct) if not name.startswith("_")}
    assert direct == set(OPERATORS)


@pytest.mark.parametrize("name", OPERATORS)
def test_direct_call_is_the_operator(name):
    """Every argument passed by its schema name (the optional ones left to their None default):
    the same tensors, bit for bit, as the torch.ops call."""
    lists, kwargs = valid_call(name, shapes=LONG_SHAPES)
    twin = {arg: [t.clone() for t in tensors] for arg, tensors in lists.items()}
    getattr(optimizers._C.direct, name)(**lists, **kwargs)
    call(name, twin, kwargs)
    for arg, tensors in lists.items():
        assert all(torch.equal(a, b) for a, b in zip(tensors, twin[arg], strict=True)), arg


def test_direct_call_raises_what_the_operator_raises():
    lists, kwargs = valid_call("adam_")
    lists["exp_avgs"] = lists["exp_avgs"][:1]
    with pytest.raises(RuntimeError) as through_torch_ops:
        call("adam_", lists, kwargs)
    with pytest.raises(RuntimeError, match=re.escape(str(through_torch_ops.value).splitlines()[0])):
        optimizers._C.direct.adam_(*lists.values(), **kwargs)


@pytest.mark.parametrize("threads", [1, 2, 3, 8])
def test_each_element_is_updated_once_however_the_threads_share_them(threads):
    """The CPU apply gives each thread an equal share of the group's elements, cut across tensors
    and chunks (csrc/cpu/multi_tensor_cpu.h). Plain SGD with lr 1 from zero params: each param must
    end at exactly -g (-2g where an element was updated twice, 0 where it was left out)."""
    sizes = [70001, 1, 65536, 65537, 3, 200003, 0, 5]
    grads = [torch.arange(1, n + 1, dtype=torch.float32) for n in sizes]
    params = [torch.zeros(n) for n in sizes]
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        kwargs = dict(
            operator_call("momentum_").kwargs, lr=1.0, momentum=0.0, weight_decay=0.0, maximize=False
        )
        torch.ops.optimizers.momentum_(params, grads, [], **kwargs)
    finally:
        torch.set_num_threads(before)
    for p, g in zip(params, grads, strict=True):
        assert torch.equal(p, -g)


# -- fp16 conversions of the CPU loops (csrc/cpu/low_precision.h) ---------------------------------
def _sgd(params, grads, model_params, lr, maximize=False):
    """Plain gradient descent (momentum 0): params - lr * g."""
    kwargs = dict(operator_call("momentum_").kwargs, lr=lr, momentum=0.0, maximize=maximize)
    torch.ops.optimizers.momentum_(params, grads, [], model_params=model_params, **kwargs)


def _all_half_values() -> torch.Tensor:
    return torch.arange(-(2**15), 2**15, dtype=torch.int32).to(torch.int16).view(torch.float16)


def test_fp16_to_float_is_exact_for_every_bit_pattern():
    """Every fp16 value (subnormals, infinities, NaN) as a grad: master = 0 - 1 * (-g) = g, which
    must equal torch's conversion."""
    grads = _all_half_values()
    master = torch.zeros(grads.shape)
    _sgd([master], [grads], [torch.zeros_like(grads)], lr=1.0, maximize=True)
    torch.testing.assert_close(master, grads.float(), rtol=0, atol=0, equal_nan=True)


def test_float_to_fp16_rounds_as_torch():
    """Floats rounded into fp16 model params (lr=0 leaves the masters as they are) match torch's
    round-to-nearest-even bit for bit: every fp16 value, the midpoints between neighbours (ties to
    even) and a float either side of each, the overflow edge, and random float bit patterns."""
    halves = _all_half_values().double()
    finite = halves[halves.isfinite()].unique()
    mid = (finite[1:] + finite[:-1]) / 2
    mid32 = mid.float()
    near = torch.cat(
        [torch.nextafter(mid32, torch.tensor(-math.inf)), torch.nextafter(mid32, torch.tensor(math.inf))]
    )
    edges = torch.tensor([65504.0, 65519.996, 65520.0, 1e-8, 2.0**-25, 2.0**-24, 1e38, math.inf, -math.inf])
    gen = torch.Generator().manual_seed(0)
    random_bits = torch.randint(-(2**31), 2**31 - 1, (1 << 20,), generator=gen, dtype=torch.int32)
    values = torch.cat([halves.float(), mid32, near, edges, -edges, random_bits.view(torch.float32)])
    model = torch.empty(values.shape, dtype=torch.float16)
    _sgd([values.clone()], [torch.zeros_like(model)], [model], lr=0.0)
    expected = values.to(torch.float16)
    assert torch.equal(model.isnan(), expected.isnan())
    keep = ~expected.isnan()
    assert torch.equal(model[keep].view(torch.int16), expected[keep].view(torch.int16))
