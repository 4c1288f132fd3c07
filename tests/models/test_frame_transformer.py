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


def _pixel_model(patch: int = 8):
    return create_model(tiny_config("frames", video_encoder={
        "kind": "frame_transformer", "config": {"stage": 5, "hidden_size": 16, "num_layers": 1, "num_heads": 2,
                                                "pixel_patch": patch}}), CLASSES).eval()


def test_the_pixel_stream_hands_on_the_grayscale_frames_p_by_p_pixels_per_token():
    encoder = _pixel_model(patch=8).video_encoder  # 32 px frames, stage 5: 2x2 tokens of 16x16 px -> 8x8 pixels each
    clip = torch.rand(1, 4, 3, 32, 32)
    feats = encoder.frozen_features(clip)
    assert feats.shape == (1, 4, encoder.channels + 64, 2, 2)
    pixels = torch.nn.functional.pixel_shuffle(feats[0, :, encoder.channels :], 8)  # (T, 1, 16, 16)
    gray = torch.nn.functional.interpolate(clip[0].mean(1, keepdim=True), size=16, mode="bilinear",
                                           align_corners=False, antialias=True)
    torch.testing.assert_close(pixels, gray)


def test_many_frames_go_through_the_cnn_in_chunks_with_the_same_maps():
    # Test views multiply the frames of a batch (clips x views x T); the CNN takes at most max_frames per call.
    backbone = _pixel_model(patch=8).video_encoder.backbone
    clip = torch.rand(3, 4, 3, 32, 32)  # 12 frames
    whole = backbone(clip)
    calls = []
    backbone.stem.register_forward_hook(lambda module, args, out: calls.append(args[0].shape[0]))
    backbone.max_frames = 5
    chunked = backbone(clip)
    assert calls == [5, 5, 2]
    torch.testing.assert_close(chunked, whole)


def test_mirroring_cached_features_mirrors_the_pixels_exactly():
    """Cached training clips are mirrored in feature space: exact for the pixels, close for the CNN maps."""
    encoder = _pixel_model().video_encoder
    clip = torch.rand(2, 4, 3, 32, 32)
    mirrored = encoder.mirror_frozen()(encoder.frozen_features(clip))
    of_mirrored_clip = encoder.frozen_features(clip.flip(-1))
    c = encoder.channels
    torch.testing.assert_close(mirrored[:, :, c:], of_mirrored_clip[:, :, c:], rtol=0, atol=1e-6)  # resize rounding
    assert torch.equal(mirrored[:, :, :c], encoder.frozen_features(clip)[:, :, :c].flip(-1))


def test_the_pixel_stream_learns_and_sees_motion():
    model = _pixel_model().train()
    model(torch.rand(2, 4, 3, 32, 32)).logits.sum().backward()
    stream = model.video_encoder.pixel_stream
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in stream.parameters())
    model.eval()
    clip = torch.rand(1, 4, 3, 32, 32)
    still = clip[:, :1].expand(-1, 4, -1, -1, -1)  # the same frame four times: the differences are zero
    pixels = model.video_encoder.frozen_features(clip)[:, :, model.video_encoder.channels :]
    pixels_still = model.video_encoder.frozen_features(still)[:, :, model.video_encoder.channels :]
    assert not torch.allclose(stream(pixels)[:, 1:], stream(pixels_still)[:, 1:], atol=1e-4)


@pytest.mark.parametrize("patch", [0, 1, 12])
def test_a_pixel_patch_that_is_not_a_power_of_two_is_refused(patch):
    with pytest.raises(ConfigError, match="pixel_patch: expected a power of 2"):
        tiny_config("frames", video_encoder={"kind": "frame_transformer", "config": {"pixel_patch": patch}})


def test_features_cached_without_pixels_are_refused_by_a_model_that_reads_them():
    with_pixels, without = _pixel_model(), create_model(tiny_config("frames", video_encoder={
        "kind": "frame_transformer", "config": {"stage": 5, "hidden_size": 16, "num_layers": 1, "num_heads": 2}}),
        CLASSES)
    feats = without.video_encoder.frozen_features(torch.rand(1, 4, 3, 32, 32))
    with pytest.raises(ValueError, match="expected T=4 frames of 176 x 2 x 2 maps"):
        with_pixels.video_encoder.forward_features(feats)


def test_without_a_cnn_the_tokens_come_from_the_pixels_alone():
    model = create_model(tiny_config("frames", video_encoder={
        "kind": "frame_transformer", "config": {"backbone": "none", "pixel_patch": 8, "hidden_size": 16,
                                                "num_layers": 1, "num_heads": 2}}), CLASSES).eval()
    encoder = model.video_encoder
    assert encoder.channels == 0 and encoder.in_proj is None and not list(encoder.backbone.parameters())
    clip = torch.rand(2, 4, 3, 32, 32)
    feats = encoder.frozen_features(clip)
    assert feats.shape == (2, 4, 64, 4, 4)  # 32 px frames: 4 x 4 tokens of 8 x 8 gray pixels
    assert encoder(clip).tokens.shape == (2, 4 * 16, 16)
    assert torch.equal(model(clip).logits, model(frozen=model.frozen_frames(clip)).logits)


def test_without_a_cnn_the_pixel_stream_is_required():
    with pytest.raises(ConfigError, match="backbone: none needs pixel_patch"):
        tiny_config("frames", video_encoder={"kind": "frame_transformer", "config": {"backbone": "none"}})


def _motion_encoder():
    """A tiny frame transformer with the frame-motion stream, in eval mode (batch norm at its running stats)."""
    return create_model(tiny_config("frames", video_encoder={"kind": "frame_transformer", "config": {
        "hidden_size": 16, "num_layers": 0, "num_heads": 2, "frame_motion": True}}), CLASSES).video_encoder.eval()


def test_frame_motion_measures_how_much_each_frame_changed_not_its_direction():
    """The stream reads |change|: a clip and the same clip with its frames reversed get the same motion per step."""
    encoder = _motion_encoder()
    feats = encoder.frozen_features(torch.rand(1, 4, 3, 32, 32))  # (1, T, C, h, w)
    forward = encoder.frame_motion(feats)  # (1, T, C)
    backward = encoder.frame_motion(feats.flip(1)).flip(1)
    assert torch.allclose(forward[:, 1:], backward[:, :-1], atol=1e-5)  # step t-1 -> t seen from either side


def test_frame_motion_tells_a_still_clip_from_a_changing_one():
    encoder = _motion_encoder()
    still = torch.rand(1, 1, 3, 32, 32).expand(1, 4, 3, 32, 32)
    changing = torch.rand(1, 4, 3, 32, 32)
    motion_still = encoder.frame_motion(encoder.frozen_features(still))
    motion_changing = encoder.frame_motion(encoder.frozen_features(changing))
    assert torch.allclose(motion_still, motion_still[:, :1].expand_as(motion_still))  # nothing moves: one value
    assert not torch.allclose(motion_still, motion_changing, atol=1e-3)
    assert not torch.allclose(encoder(still).tokens, encoder(changing).tokens, atol=1e-3)


def test_frame_motion_without_a_cnn_is_refused():
    with pytest.raises(ConfigError, match="frame_motion needs the CNN"):
        tiny_config("frames", video_encoder={"kind": "frame_transformer", "config": {
            "backbone": "none", "pixel_patch": 8, "frame_motion": True}})
