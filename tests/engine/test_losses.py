"""Training losses: BCE / CE by label type, and the asymmetric loss's defining properties."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from msqnet.config_loader import ConfigError
from msqnet.engine.config import LossConfig
from msqnet.engine.losses import AsymmetricLoss, build_loss, resolve_loss_name


def _batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(6, 5, generator=g) * 3
    targets = (torch.rand(6, 5, generator=g) < 0.3).float()
    return logits, targets


def test_asymmetric_loss_without_focusing_or_margin_is_binary_cross_entropy():
    logits, targets = _batch()
    asl = AsymmetricLoss(gamma_pos=0.0, gamma_neg=0.0, clip=0.0)
    torch.testing.assert_close(asl(logits, targets), F.binary_cross_entropy_with_logits(logits, targets))


def test_asymmetric_loss_ignores_negatives_below_the_margin():
    asl = AsymmetricLoss(gamma_pos=0.0, gamma_neg=0.0, clip=0.05)
    easy_negative = torch.tensor([[-4.0]])  # p = 0.018 < clip
    assert asl(easy_negative, torch.zeros(1, 1)).item() == 0.0
    assert asl(torch.tensor([[0.0]]), torch.zeros(1, 1)).item() > 0.0


def test_asymmetric_focusing_down_weights_confident_negatives_more_than_bce():
    logits = torch.tensor([[-2.0]])  # a fairly confident negative, above the margin
    target = torch.zeros(1, 1)
    bce = F.binary_cross_entropy_with_logits(logits, target)
    asl = AsymmetricLoss(gamma_pos=0.0, gamma_neg=4.0, clip=0.0)(logits, target)
    p = torch.sigmoid(logits)
    torch.testing.assert_close(asl, bce * p.squeeze() ** 4)


def test_asymmetric_loss_has_gradients_for_positives():
    logits, targets = _batch(1)
    logits.requires_grad_(True)
    AsymmetricLoss()(logits, targets).backward()
    assert logits.grad[targets.bool()].abs().sum() > 0


def test_auto_picks_bce_for_multi_label_and_ce_for_single_label():
    assert resolve_loss_name(LossConfig(), multi_label=True) == "bce"
    assert resolve_loss_name(LossConfig(), multi_label=False) == "ce"


def test_ce_on_multi_label_data_and_bce_on_single_label_data_are_config_errors():
    with pytest.raises(ConfigError, match="multi-label"):
        resolve_loss_name(LossConfig(name="ce"), multi_label=True)
    with pytest.raises(ConfigError, match="single-label"):
        resolve_loss_name(LossConfig(name="asymmetric"), multi_label=False)


def test_cross_entropy_takes_class_ids_with_label_smoothing():
    logits, _ = _batch()
    ids = torch.tensor([0, 1, 2, 3, 4, 0])
    loss = build_loss(LossConfig(name="ce", label_smoothing=0.1), multi_label=False)
    torch.testing.assert_close(loss(logits, ids), F.cross_entropy(logits, ids, label_smoothing=0.1))
