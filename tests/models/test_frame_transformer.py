"""The CPU-sized video encoder: frozen EfficientNet-Lite0 frame features + a trainable space-time transformer."""
from __future__ import annotations

import pytest
import torch
from safetensors import safe_open

import msqnet
from msqnet.checkpoint import save_model
from msqnet.config_loader import ConfigError
from msqnet.models import create_model
from msqnet.models.efficientnet_lite import efficientnet_lite0

from .tiny import tiny_config

CLASSES = ["walking", "running", "eating"]


@pytest.mark.parametrize("size,stage", [(32, 3), (64, 5), (56, 5), (112, 5), (64, 7)])
def test_the_token_grid_is_the_backbones_real_feature_map(size, stage):
    model = create_model(tiny_config("frames", image_size=size, video_encoder={
        "kind": "frame_transformer", "config": {"stage": stage, "hidden_size": 16, "num_layers": 1, "num_heads": 2}}),
        CLASSES)
    encoder = model.video_encoder
    feats = encoder.frozen_features(torch.rand(1, 4, 3, size, size))
    net = efficientnet_lite0(pretrained=False)
    expected = net.forward_stages(torch.rand(1, 3, size, size), stage).shape  # (1, C, h, w)
    assert feats.shape == (1, 4, *expected[1:])
    assert encoder.num_space == expected[2] * expected[3]


def test_frozen_frames_passed_back_give_exactly_the_same_logits():
    model = create_model(tiny_config("frames"), CLASSES).eval()
    clip = torch.rand(2, 4, 3, 32, 32)
    frozen = model.frozen_frames(clip)
    assert frozen.features.shape[:2] == (2, 4) and frozen.visual.shape[:2] == (2, 4)
    assert torch.equal(model(clip).logits, model(frozen=frozen).logits)


def test_the_cnn_is_frozen_in_eval_mode_and_only_the_transformer_learns():
    model = create_model(tiny_config("frames"), CLASSES).train()
    cnn = model.video_encoder.backbone
    before = {k: v.clone() for k, v in cnn.state_dict().items()}
    model(torch.rand(2, 4, 3, 32, 32)).logits.sum().backward()
    assert not cnn.training and all(not p.requires_grad for p in cnn.parameters())
    assert all(torch.equal(before[k], v) for k, v in cnn.state_dict().items())  # BatchNorm stats did not move
    trainable = [n for n, p in model.video_encoder.named_parameters() if p.requires_grad]
    assert trainable and all(not n.startswith("backbone.") for n in trainable)
    assert all(p.grad is not None for n, p in model.video_encoder.named_parameters() if p.requires_grad)


def test_the_encoder_sees_motion_not_only_frames():
    """Reversing a clip's frames changes its tokens (time embeddings and frame differences are order-aware)."""
    model = create_model(tiny_config("frames"), CLASSES).eval()
    clip = torch.rand(1, 4, 3, 32, 32)
    forward = model.video_encoder(clip).tokens
    backward = model.video_encoder(clip.flip(1)).tokens
    assert not torch.allclose(forward, backward.flip(1), atol=1e-4)


def test_a_checkpoint_stores_the_cnn_by_reference_and_reloads_identically(tmp_path):
    torch.manual_seed(0)
    model = create_model(tiny_config("frames"), CLASSES).eval()
    save_model(model, tmp_path / "ckpt")
    with safe_open(str(tmp_path / "ckpt" / "model.safetensors"), "pt") as f:
        keys = list(f.keys())
    assert not any(k.startswith("video_encoder.backbone.") for k in keys)
    assert any(k.startswith("video_encoder.blocks.") for k in keys)
    clip = torch.rand(1, 4, 3, 32, 32)
    assert torch.equal(model(clip).logits, msqnet.load_model(tmp_path / "ckpt")(clip).logits)


def test_an_unknown_encoder_setting_is_refused_when_the_config_loads():
    with pytest.raises(ConfigError, match=r"video_encoder\.config\.layers: unknown key"):
        tiny_config("frames", video_encoder={"kind": "frame_transformer", "config": {"layers": 2}})
