"""Clip transforms: shapes, seeded determinism, one augmentation per clip, and each operation's effect."""
from __future__ import annotations

import pytest
import torch

from msqnet.config_loader import ConfigError, from_dict
from msqnet.data.decode import read_frames
from msqnet.data.transforms import (
    TransformConfig,
    build_test_transform,
    build_train_transform,
    center_crop,
    color_jitter,
    multiscale_crop_box,
    random_resized_crop_box,
    resize_short_side,
    three_crop,
    to_grayscale,
)

NO_COLOUR = dict(color_jitter=(0.0, 0.0, 0.0, 0.0), grayscale_prob=0.0)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def clip(shared_videos) -> torch.Tensor:
    """Four real frames of bikes.mp4 (640x272), decoded at short side 64: uint8 (4, 3, 64, 151)."""
    return read_frames(shared_videos / "bikes.mp4", [0, 30, 60, 90], size=64)


@pytest.mark.parametrize("crop", ["multiscale", "random_resized", "center"])
def test_train_transform_returns_uint8_square_frames(clip, crop):
    out = build_train_transform(TransformConfig(size=32, short_side=40, train_crop=crop))(clip, gen(0))
    assert out.dtype == torch.uint8 and out.shape == (4, 3, 32, 32)


@pytest.mark.parametrize("crop", ["multiscale", "random_resized", "center"])
def test_train_transform_is_deterministic_given_the_generator_seed(clip, crop):
    tf = build_train_transform(TransformConfig(size=32, short_side=40, train_crop=crop))
    assert torch.equal(tf(clip, gen(7)), tf(clip, gen(7)))
    outs = {tf(clip, gen(s)).sum().item() for s in range(8)}
    assert len(outs) > 1


@pytest.mark.parametrize("crop", ["multiscale", "random_resized"])
def test_one_crop_flip_and_jitter_is_applied_to_every_frame_of_a_clip(clip, crop):
    # A clip of one frame repeated: any per-frame draw would make the output frames differ.
    still = clip[:1].expand(6, -1, -1, -1).contiguous()
    tf = build_train_transform(TransformConfig(size=32, short_side=40, train_crop=crop, color_jitter_prob=1.0))
    for seed in range(25):
        out = tf(still, gen(seed))
        assert all(torch.equal(out[0], out[t]) for t in range(1, 6)), f"seed {seed}: frames augmented differently"


def test_hflip_can_be_disabled_for_direction_sensitive_labels(clip):
    cfg = dict(size=32, short_side=40, train_crop="center", **NO_COLOUR)
    reference = center_crop(resize_short_side(clip, 40), 32)
    no_flip = build_train_transform(TransformConfig(hflip=False, **cfg))
    assert all(torch.equal(no_flip(clip, gen(s)), reference) for s in range(10))
    flip = build_train_transform(TransformConfig(hflip=True, **cfg))
    outs = [flip(clip, gen(s)) for s in range(10)]
    assert any(torch.equal(o, reference.flip(-1)) for o in outs)
    assert any(torch.equal(o, reference) for o in outs)


def test_grayscale_makes_all_channels_equal(clip):
    tf = build_train_transform(TransformConfig(size=32, short_side=40, color_jitter_prob=0.0, grayscale_prob=1.0))
    out = tf(clip, gen(0))
    assert torch.equal(out[:, 0], out[:, 1]) and torch.equal(out[:, 1], out[:, 2])


def test_neutral_colour_jitter_is_the_identity(clip):
    x = clip.float() / 255
    assert torch.allclose(color_jitter(x, 1.0, 1.0, 1.0, 0.0, order=[3, 2, 1, 0]), x, atol=1e-6)


def test_colour_jitter_operations_change_what_they_name(clip):
    x = clip.float() / 255
    assert color_jitter(x, 0.5, 1, 1, 0, order=[0]).mean() < x.mean()  # darker
    assert color_jitter(x, 1, 0.5, 1, 0, order=[1]).std() < x.std()  # flatter
    desat = color_jitter(x, 1, 1, 0.0, 0, order=[2])
    assert torch.allclose(desat, to_grayscale(x), atol=1e-6)  # saturation 0 = grayscale
    gray = to_grayscale(x)
    assert torch.allclose(color_jitter(gray, 1, 1, 1, 0.3, order=[3]), gray, atol=1e-5)  # hue leaves gray alone
    assert not torch.allclose(color_jitter(x, 1, 1, 1, 0.3, order=[3]), x, atol=1e-2)


def test_test_transform_resizes_short_side_then_centre_crops(clip):
    cfg = TransformConfig(size=32)  # short side defaults to round(32 * 8 / 7) = 37
    out = build_test_transform(cfg)(clip)
    assert cfg.resize_to == 37 and out.shape == (4, 3, 32, 32)
    assert torch.equal(out, center_crop(resize_short_side(clip, 37), 32))


def test_three_crop_takes_left_centre_right_of_landscape_frames(clip):
    crops = three_crop(clip, 64)  # frames are 64 x 151
    assert crops.shape == (3, 4, 3, 64, 64)
    assert torch.equal(crops[0], clip[..., :64])
    assert torch.equal(crops[1], clip[..., 43:107])
    assert torch.equal(crops[2], clip[..., -64:])
    portrait = three_crop(clip.transpose(-1, -2), 64)
    assert torch.equal(portrait[2], clip.transpose(-1, -2)[..., -64:, :])
    assert build_test_transform(TransformConfig(size=32), num_crops=3)(clip).shape == (3, 4, 3, 32, 32)


def test_multiscale_crop_boxes_use_the_listed_scales_at_corners_or_centre():
    scales = (1.0, 0.875, 0.75, 0.66)
    sides = {int(256 * s) for s in scales}
    for seed in range(40):
        top, left, h, w = multiscale_crop_box(256, 340, scales, 1, gen(seed))
        assert h in sides and w in sides
        assert top in (0, 256 - h, (256 - h) // 2) and left in (0, 340 - w, (340 - w) // 2)
        assert top + h <= 256 and left + w <= 340


def test_random_resized_crop_boxes_stay_inside_the_frame_and_area_range():
    for seed in range(40):
        top, left, h, w = random_resized_crop_box(120, 200, (0.25, 1.0), (3 / 4, 4 / 3), gen(seed))
        assert 0 <= top and top + h <= 120 and 0 <= left and left + w <= 200
        assert 0.2 <= h * w / (120 * 200) <= 1.0


def test_transform_config_validates_its_fields():
    cfg = from_dict(TransformConfig, {"size": 112, "train_crop": "random_resized", "hflip": False})
    assert cfg.resize_to == 128
    with pytest.raises(ConfigError, match="train_crop"):
        from_dict(TransformConfig, {"train_crop": "five_crop"})
    with pytest.raises(ConfigError, match="short_side"):
        TransformConfig(size=224, short_side=200)
    with pytest.raises(ConfigError, match="grayscale_prob"):
        TransformConfig(grayscale_prob=1.5)
