"""Parameter lists of the speed benchmark: one flat tensor, the shapes of real models (ResNets,
GPT-2 small; no torchvision or transformers needed), and lists of many small tensors, where a
step is bound by per-tensor overhead rather than by memory bandwidth."""

from __future__ import annotations


def _conv_bn(out_ch: int, in_ch: int, k: int) -> list[tuple[int, ...]]:
    """A bias-free convolution and its BatchNorm (weight and bias)."""
    return [(out_ch, in_ch, k, k), (out_ch,), (out_ch,)]


def _stem_and_head(blocks: list[tuple[int, ...]], features: int) -> list[tuple[int, ...]]:
    return _conv_bn(64, 3, 7) + blocks + [(1000, features), (1000,)]


def resnet18() -> list[tuple[int, ...]]:
    """The 62 parameter tensors of torchvision's resnet18 (11.7M elements)."""
    blocks, in_ch = [], 64
    for width in (64, 128, 256, 512):
        for block in range(2):
            shapes = _conv_bn(width, in_ch, 3) + _conv_bn(width, width, 3)
            if block == 0 and in_ch != width:
                shapes += _conv_bn(width, in_ch, 1)  # downsample
            blocks += shapes
            in_ch = width
    return _stem_and_head(blocks, 512)


def resnet50() -> list[tuple[int, ...]]:
    """The 161 parameter tensors of torchvision's resnet50 (25.6M elements)."""
    blocks, in_ch = [], 64
    for width, count in ((64, 3), (128, 4), (256, 6), (512, 3)):
        for block in range(count):
            shapes = _conv_bn(width, in_ch, 1) + _conv_bn(width, width, 3) + _conv_bn(4 * width, width, 1)
            if block == 0:
                shapes += _conv_bn(4 * width, in_ch, 1)  # downsample
            blocks += shapes
            in_ch = 4 * width
    return _stem_and_head(blocks, 2048)


def gpt2_small() -> list[tuple[int, ...]]:
    """The 148 parameter tensors of GPT-2 small (124,439,808 elements; the lm_head is tied to wte
    and not counted again), in the order of Hugging Face's GPT2LMHeadModel. Its Conv1D weights are
    stored (in, out)."""
    d, context, vocab, layers = 768, 1024, 50257, 12
    block = [
        (d,),  # ln_1.weight
        (d,),  # ln_1.bias
        (d, 3 * d),  # attn.c_attn.weight
        (3 * d,),  # attn.c_attn.bias
        (d, d),  # attn.c_proj.weight
        (d,),  # attn.c_proj.bias
        (d,),  # ln_2.weight
        (d,),  # ln_2.bias
        (d, 4 * d),  # mlp.c_fc.weight
        (4 * d,),  # mlp.c_fc.bias
        (4 * d, d),  # mlp.c_proj.weight
        (d,),  # mlp.c_proj.bias
    ]
    return [(vocab, d), (context, d)] + block * layers + [(d,), (d,)]  # wte, wpe, blocks, ln_f


def many_small(count: int = 2048, largest: int = 1 << 16) -> list[tuple[int, ...]]:
    """`count` flat tensors whose sizes run from 1 to `largest` elements evenly on a log scale (as
    biases, norms and small projections do in a large model): 2048 tensors, 12.1M elements."""
    return [(round(largest ** (i / (count - 1))),) for i in range(count)]


def tiny_tensors(count: int = 4096) -> list[tuple[int, ...]]:
    """`count` one-element tensors: the step time is the per-step and per-tensor overhead alone."""
    return [(1,)] * count


def single(n: int) -> list[tuple[int, ...]]:
    return [(n,)]


def numel(shapes: list[tuple[int, ...]]) -> int:
    total = 0
    for shape in shapes:
        count = 1
        for d in shape:
            count *= d
        total += count
    return total


# Name -> shape list, as the CLI and the CSV name them.
WORKLOADS = {
    "1M": lambda: single(1 << 20),
    "16M": lambda: single(1 << 24),
    "64M": lambda: single(1 << 26),
    "256M": lambda: single(1 << 28),
    "resnet18": resnet18,
    "resnet50": resnet50,
    "gpt2": gpt2_small,
    "many-small": many_small,
    "overhead": tiny_tensors,
}

ROUNDS = 20
"""Rounds of interleaved steps a workload is timed in, unless told otherwise."""
FEWER_ROUNDS = {"gpt2": 10}
"""Workloads timed in fewer rounds by default: a GPT-2 round steps every implementation over 124M params
(half a second), and its speedups' intervals are narrow in 10 (1-5% wide in a 30-round run). 20 for
the others, whose intervals were 1-5% wide in 30 rounds too: every timed step starts with a flush of
twice the last-level cache, which took most of a 30-round run's 13 minutes on a 480 MB L3."""


def default_rounds(workload: str) -> int:
    return FEWER_ROUNDS.get(workload, ROUNDS)


DEFAULT_WORKLOADS = {
    # 64M (by --workloads) only repeats 16M's bandwidth-bound case at 4x the time: 172 s of the 658 s of
    # timed steps of a full CPU run, which must leave `make bench` under 20 minutes on 2 cores.
    # resnet18 (by --workloads) repeats resnet50's layer shapes at half the size.
    "cpu": ["1M", "16M", "resnet50", "gpt2", "many-small", "overhead"],
    "cuda": ["1M", "16M", "64M", "256M", "resnet50"],
}
"""The workloads a full run measures, by device type (the CLI's help shows them from here)."""
