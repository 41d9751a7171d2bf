"""Fused C++/CUDA optimizers for PyTorch: drop-in torch.optim.Optimizer classes.

    from optimizers import Adam
    opt = Adam(model.parameters(), lr=1e-3)

Each step updates every tensor of a param group in one fused kernel call
(see docs/optimizers.md for the exact rules).
"""

from optimizers._extension import extension_available
from optimizers.adam import Adam, AdamW
from optimizers.diffgrad import DiffGrad
from optimizers.momentum import Momentum
from optimizers.rmsprop import RMSProp

__all__ = ["Adam", "AdamW", "DiffGrad", "Momentum", "RMSProp", "extension_available"]
__version__ = "0.1.0"
