"""The networks, one per input kind, chosen by build_model from the input's shape.

- 1-D signals (MNIST-1D): Conv1dNet, the MNIST-1D paper's CNN: three conv layers of 25 channels
  (kernels 5, 3, 3, stride 2, padding 1) with ReLU, then a linear head; no normalization layers, so the
  optimizer alone sets how well the ill-scaled layers train (5,210 parameters at length 40).
- images: SmallCNN, stages of conv3x3-BN-ReLU then 2x2 max-pooling, halving the image while it is at
  least 4 pixels across, at most 3 times (8x8 digits: 2 stages down to 2x2; 28x28 MNIST: 3, to 3x3;
  32x32 CIFAR: 3, to 4x4), then a linear head on the flattened features."""

from __future__ import annotations

from torch import nn

WIDTHS = (32, 64, 128)
"""Channels of SmallCNN's stages, in order; an input needs at most this many stages."""

CONV1D_LAYERS = ((25, 5), (25, 3), (25, 3))
"""Conv1dNet's (channels, kernel) per layer, each with stride 2 and padding 1 (MNIST-1D's ConvBase)."""


def stages_for(size: int) -> int:
    """Pooling stages: halve while the image is at least 4 pixels across, at most len(WIDTHS) times."""
    n = 0
    while size >= 4 and n < len(WIDTHS):
        size //= 2
        n += 1
    return n


class SmallCNN(nn.Module):
    def __init__(self, in_channels: int, size: int, classes: int, widths: tuple[int, ...] | None = None):
        super().__init__()
        widths = WIDTHS[: stages_for(size)] if widths is None else tuple(widths)
        layers: list[nn.Module] = []
        channels = in_channels
        for width in widths:
            layers += [
                nn.Conv2d(channels, width, 3, padding=1, bias=False),  # BN supplies the bias
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]
            channels = width
            size //= 2
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(channels * size * size, classes)
        self.description = (
            f"SmallCNN(in {in_channels}ch, stages {list(widths)} of conv3x3-BN-ReLU-maxpool2, "
            f"linear {self.head.in_features}->{classes})"
        )

    def forward(self, x):
        return self.head(self.features(x).flatten(1))


class Conv1dNet(nn.Module):
    def __init__(self, in_channels: int, length: int, classes: int):
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_channels
        for width, kernel in CONV1D_LAYERS:
            layers += [nn.Conv1d(channels, width, kernel, stride=2, padding=1), nn.ReLU()]
            channels = width
            length = (length + 2 - kernel) // 2 + 1
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(channels * length, classes)
        self.description = (
            f"Conv1dNet(in {in_channels}ch, conv1d {[w for w, _ in CONV1D_LAYERS]} kernels "
            f"{[k for _, k in CONV1D_LAYERS]} stride 2 + ReLU, no BN, "
            f"linear {self.head.in_features}->{classes})"
        )

    def forward(self, x):
        return self.head(self.features(x).flatten(1))


def build_model(shape: tuple[int, ...], classes: int) -> nn.Module:
    """The model for (C, L) signals or (C, H, W) square images."""
    if len(shape) == 2:
        return Conv1dNet(shape[0], shape[1], classes)
    channels, height, width = shape
    if height != width:
        raise ValueError(f"SmallCNN expects square images, got {height}x{width}")
    return SmallCNN(channels, height, classes)
