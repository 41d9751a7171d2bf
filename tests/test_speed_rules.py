"""The speed benchmark's rule declarations (benchmarks.speed.rules) agree with the optimizers they time:
ours is one of our classes, and the byte floor counts the state tensors a step really reads and writes."""

import pytest
import torch

import optimizers
from benchmarks import optimizer_specs
from benchmarks.speed.rules import PACKAGE_PEERS, RULES, TORCH_PEERS, rules_timing

RULE_LIST = list(RULES.values())


def _per_element_state(optimizer: torch.optim.Optimizer, param: torch.Tensor) -> list[str]:
    """The names of the param's state tensors of its own shape (a step count is not one of them)."""
    state = optimizer.state[param]
    return sorted(k for k, v in state.items() if torch.is_tensor(v) and v.shape == param.shape)


def _stepped(factory) -> tuple[torch.optim.Optimizer, torch.Tensor]:
    param = torch.nn.Parameter(torch.randn(64, generator=torch.Generator().manual_seed(0)))
    param.grad = torch.full_like(param, 1e-3)
    optimizer = factory([param])
    optimizer.step()
    return optimizer, param


@pytest.mark.parametrize("rule", RULE_LIST, ids=[r.name for r in RULE_LIST])
def test_ours_is_one_of_our_optimizers(rule):
    spec = optimizer_specs.SPECS[rule.spec]
    assert spec.ours and rule.ours in {getattr(optimizers, name) for name in optimizers.__all__}


@pytest.mark.parametrize("rule", RULE_LIST, ids=[r.name for r in RULE_LIST])
def test_values_moved_counts_the_state_ours_creates(rule):
    """Each state tensor read and written, the param read and written, the grad read."""
    optimizer, param = _stepped(rule.build_ours)
    state = _per_element_state(optimizer, param)
    assert rule.values_moved == 2 * len(state) + 3, f"{rule.name}: state {state}"


@pytest.mark.parametrize(
    "rule", [r for r in RULE_LIST if r.torch_class], ids=[r.name for r in RULE_LIST if r.torch_class]
)
def test_torchs_peer_keeps_as_much_state_as_ours(rule):
    """The same rule in torch.optim (built with the rule's hyperparameters) holds as many per-element
    state tensors: values_moved is the floor of the peers too."""
    ours, param = _stepped(rule.build_ours)
    torch_peer, torch_param = _stepped(rule.implementations["torch-foreach"])
    assert len(_per_element_state(torch_peer, torch_param)) == len(_per_element_state(ours, param))
    assert ("torch-fused" in rule.implementations) == rule.torch_fused


@pytest.mark.parametrize("rule", RULE_LIST, ids=[r.name for r in RULE_LIST])
def test_implementations_are_ours_then_the_peers_named(rule):
    names = list(rule.implementations)
    assert names[0] == "ours" and rule.target_peer in names[1:]
    torch_peers = [n for n in names if n in TORCH_PEERS]
    assert names[1 : 1 + len(torch_peers)] == torch_peers  # torch's first, in TORCH_PEERS order
    assert names[1 + len(torch_peers) :] == [peer.package for peer in rule.packages]


def test_every_optimizer_spec_is_timed_by_a_rule():
    """Adding an optimizer spec without its speed rule fails here (`optbench all` would skip it)."""
    untimed = [name for name in optimizer_specs.SPECS if not rules_timing([name])]
    assert untimed == []


def test_the_rules_of_optimizer_specs():
    assert rules_timing(["SGD", "Adam", "DiffGrad"]) == ["momentum", "adam", "diffgrad"]
    assert rules_timing(["Nesterov", "Adam (no bias corr.)", "Momentum"]) == ["momentum", "adam"]
    ours = ["SGD", "Momentum", "Nesterov", "RMSProp", "Adam", "Adam (no bias corr.)", "AdamW", "DiffGrad"]
    assert rules_timing(ours) == ["momentum", "rmsprop", "adam", "adamw", "diffgrad"]
    torchs = ["torch SGD", "torch Momentum", "torch Nesterov", "torch RMSprop", "torch Adam", "torch AdamW"]
    assert rules_timing(torchs) == ["momentum", "rmsprop", "adam", "adamw"]
    # A variant is timed when named, never for its optimizer's spec.
    assert RULES["adam-amsgrad"].variant and RULES["adam-amsgrad"].ours is RULES["adam"].ours
    assert "adam-amsgrad" not in rules_timing(list(optimizer_specs.SPECS))


def test_the_readme_headline_groups_the_rules_by_target_peer():
    """The README's row order (a rule added later joins the group of its target peer)."""
    from benchmarks.readme import _headline_rules

    published = ["momentum", "adam", "adamw", "adam-amsgrad", "rmsprop", "diffgrad"]
    assert [(rule, peer) for rule, peer in _headline_rules() if rule in published] == [
        ("momentum", "torch-fused"),
        ("adam", "torch-fused"),
        ("adamw", "torch-fused"),
        ("adam-amsgrad", "torch-fused"),
        ("rmsprop", "torch-foreach"),
        ("diffgrad", "pytorch_optimizer"),
    ]


def test_peers_of_one_package_agree_on_where_they_run():
    """cases.left_out_reason knows a package's peer by its name alone (the package)."""
    for rule in RULE_LIST:
        for peer in rule.packages:
            assert peer.cpu_only == PACKAGE_PEERS[peer.package].cpu_only, (rule.name, peer.package)
