"""Fused C++/CUDA optimizers for PyTorch: drop-in torch.optim.Optimizer classes (Momentum, RMSProp,
Adam, AdamW, diffGrad, AdaGrad, RAdam, AdaBelief).

    from optimizers import Adam
    opt = Adam(model.parameters(), lr=1e-3)

Each step updates every tensor of a param group in one fused kernel call
(see docs/optimizers.md for the exact rules).
"""

from optimizers._extension import extension_available
from optimizers.adabelief import AdaBelief
from optimizers.adagrad import Adagrad
from optimizers.adam import Adam, AdamW
from optimizers.diffgrad import DiffGrad
from optimizers.momentum import Momentum
from optimizers.radam import RAdam
from optimizers.rmsprop import RMSProp

__all__ = [
    "AdaBelief",
    "Adagrad",
    "Adam",
    "AdamW",
    "DiffGrad",
    "Momentum",
    "RAdam",
    "RMSProp",
    "extension_available",
]
__version__ = "0.1.0"
