"""Frozen visual embedders: CLIP vision and the real ImageNet EfficientNet-Lite0 (and Lite1/2) on real video frames."""
from __future__ import annotations

from pathlib import Path

import av
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from transformers import CLIPVisionConfig, CLIPVisionModel

from msqnet.models.config import VisualEmbedderConfig
from msqnet.models.efficientnet_lite import (
    EFFICIENTNET_LITE_MEAN,
    EFFICIENTNET_LITE_STD,
    LITE_VARIANTS,
    convert_state_dict,
    default_lite0_weights,
    default_weights,
    efficientnet_lite,
    efficientnet_lite0,
    fuse_batchnorm,
)
from msqnet.models.normalize import Normalize
from msqnet.models.visual import build_visual_embedder

TINY_CLIP_VISION = dict(image_size=32, patch_size=8, hidden_size=24, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=48)
LITE = dict(kind="efficientnet_lite0", image_size=224, mean=EFFICIENTNET_LITE_MEAN, std=EFFICIENTNET_LITE_STD)

# ImageNet-1k class ids checked below.
WOOD_RABBIT, HARE, ANGORA = 330, 331, 332
BOW_TIE = 457
SEAT_BELT, SUIT, WINDSOR_TIE = 785, 834, 906


def decode_frames(path: Path, indices: list[int]) -> torch.Tensor:
    """Frames ``indices`` of a real video, decoded with PyAV, as uint8 (N, 3, H, W)."""
    wanted, frames = set(indices), {}
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i in wanted:
                frames[i] = torch.from_numpy(frame.to_ndarray(format="rgb24")).permute(2, 0, 1)
            if len(frames) == len(wanted):
                break
    return torch.stack([frames[i] for i in indices])


@pytest.fixture(scope="module")
def lite():
    """The EfficientNet-Lite0 embedder with the packaged ImageNet weights, at 224 px."""
    return build_visual_embedder(VisualEmbedderConfig(**LITE))


def tiny_clip_cfg(**fields) -> VisualEmbedderConfig:
    return VisualEmbedderConfig(kind="clip", config=TINY_CLIP_VISION, **fields)


def test_efficientnet_lite0_loads_the_packaged_imagenet_weights_strictly():
    state = torch.load(default_lite0_weights(), weights_only=True, map_location="cpu")
    converted = convert_state_dict(state)
    model = efficientnet_lite0(pretrained=False)
    assert set(converted) == set(model.state_dict())  # every shipped tensor has exactly one home
    model.load_state_dict(converted, strict=True)
    assert sum(p.numel() for p in model.parameters()) == 4_652_008  # the published 4.65M
    assert torch.equal(model.classifier.weight, state["_fc.weight"])


@pytest.mark.parametrize("variant, parameters", [("lite1", 5_416_680), ("lite2", 6_092_072)])
def test_the_larger_lite_variants_load_their_packaged_imagenet_weights_strictly(variant, parameters):
    state = convert_state_dict(torch.load(default_weights(variant), weights_only=True, map_location="cpu"))
    model = efficientnet_lite(variant)
    assert {k: v.shape for k, v in state.items()} == {k: v.shape for k, v in model.state_dict().items()}
    assert sum(p.numel() for p in model.parameters()) == parameters  # the published 5.4M / 6.1M


@pytest.mark.parametrize("variant", ["lite1", "lite2"])
def test_the_larger_lite_variants_see_the_man_in_a_bow_tie_in_his_car(variant, shared_videos):
    net = efficientnet_lite(variant, pretrained=True).eval()
    size = LITE_VARIANTS[variant][1]
    frames = decode_frames(shared_videos / "carphone_pristine.mp4", [0, 40, 100]).float().div(255)
    x = F.interpolate(frames, size=(size, size), antialias=True, mode="bilinear")
    with torch.no_grad():
        top3 = net(Normalize(EFFICIENTNET_LITE_MEAN, EFFICIENTNET_LITE_STD)(x)).topk(3).indices
    assert set(top3.flatten().tolist()) <= {BOW_TIE, SUIT, WINDSOR_TIE, SEAT_BELT}, top3  # Lite2 ranks the suit first


def test_an_unknown_lite_variant_names_the_known_ones():
    with pytest.raises(ValueError, match=r"expected one of \['lite0', 'lite1', 'lite2'\], got 'lite3'"):
        efficientnet_lite("lite3")


def test_folding_batchnorm_keeps_the_features_of_real_frames(shared_videos):
    import copy

    net = efficientnet_lite0(pretrained=True).eval()
    folded = fuse_batchnorm(copy.deepcopy(net))
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    frames = decode_frames(shared_videos / "bikes.mp4", [0, 10]).float().div(255)
    x = (F.interpolate(frames, size=(64, 64), antialias=True, mode="bilinear") - 0.5) / 0.5
    with torch.no_grad():
        torch.testing.assert_close(folded.forward_stages(x, 5), net.forward_stages(x, 5), rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(folded(x), net(x), rtol=1e-4, atol=1e-4)


def test_efficientnet_lite0_recognises_the_rabbit_in_big_buck_bunny(lite, shared_videos):
    # Frame 5: the rabbit looks out of its burrow; crop the 300x300 px around it.
    frame = decode_frames(shared_videos / "bigbuckbunny.mp4", [5])[:, :, 180:480, 220:520]
    logits = lite.encoder.classifier(lite(frame[None]))  # a one-frame clip through the embedder's own preprocessing
    top5 = logits[0].topk(5).indices.tolist()
    assert top5[0] in (WOOD_RABBIT, HARE, ANGORA), top5
    assert len({WOOD_RABBIT, HARE, ANGORA} & set(top5)) >= 2, top5


def test_efficientnet_lite0_recognises_the_bow_tie_in_carphone(lite, shared_videos):
    frames = decode_frames(shared_videos / "carphone_pristine.mp4", [0, 40, 100])  # 176x144, man in a red bow tie
    logits = lite.encoder.classifier(lite(frames[:, None]))  # three one-frame clips
    assert logits.argmax(-1).tolist() == [BOW_TIE] * 3


def test_lite_pixel_statistics_beat_imagenet_statistics_on_real_frames(lite, shared_videos):
    from msqnet.models.config import IMAGENET_MEAN, IMAGENET_STD

    imagenet_stats = build_visual_embedder(VisualEmbedderConfig(**{**LITE, "mean": IMAGENET_MEAN, "std": IMAGENET_STD}))
    frames = decode_frames(shared_videos / "carphone_pristine.mp4", [0, 40, 100])[:, None]
    p_lite = lite.encoder.classifier(lite(frames)).softmax(-1)[:, BOW_TIE]
    p_imagenet = imagenet_stats.encoder.classifier(imagenet_stats(frames)).softmax(-1)[:, BOW_TIE]
    assert (p_lite > p_imagenet).all() and p_lite.mean() > 0.5, (p_lite, p_imagenet)


def test_frames_of_one_video_embed_closer_than_frames_of_other_videos(lite, shared_videos):
    bunny = decode_frames(shared_videos / "bigbuckbunny.mp4", [20, 80])
    others = [decode_frames(shared_videos / name, [40]) for name in ("bikes.mp4", "vtest.avi", "tree.avi")]
    # Each frame is its own one-frame clip: the embedder resizes every size to 224 px.
    emb = F.normalize(torch.cat([lite(f[None]) for f in (bunny[:1], bunny[1:], *others)]), dim=-1)  # (5, 1280)
    same = emb[0] @ emb[1]
    across = emb[0] @ emb[2:].T
    assert (same > across).all(), (same, across)


def test_visual_embedding_is_the_time_mean_of_frame_embeddings():
    embedder = build_visual_embedder(VisualEmbedderConfig(kind="efficientnet_lite0", mean=EFFICIENTNET_LITE_MEAN,
                                                          std=EFFICIENTNET_LITE_STD))
    clip = torch.rand(2, 3, 3, 64, 64)
    out = embedder(clip)
    assert out.shape == (2, embedder.out_dim) == (2, 1280)
    per_frame = torch.stack([embedder(clip[:, t : t + 1]) for t in range(3)], dim=1)  # (B, T, D)
    torch.testing.assert_close(out, per_frame.mean(dim=1), rtol=1e-5, atol=1e-6)


def test_uint8_and_float_clips_embed_the_same():
    embedder = build_visual_embedder(tiny_clip_cfg())
    clip = torch.randint(0, 256, (2, 2, 3, 32, 32), dtype=torch.uint8)
    torch.testing.assert_close(embedder(clip), embedder(clip.float() / 255), rtol=1e-5, atol=1e-6)


def test_visual_embedder_is_frozen_stays_in_eval_and_passes_no_gradient(lite):
    parent = nn.ModuleDict({"visual": lite, "head": nn.Linear(1280, 2)})
    running = {k: v.clone() for k, v in lite.state_dict().items()}
    parent.train()
    assert parent.training and parent["head"].training
    assert not any(m.training for m in lite.modules())
    assert not any(p.requires_grad for p in lite.parameters())
    clip = torch.rand(1, 2, 3, 64, 64, requires_grad=True)
    out = lite(clip)
    assert not out.requires_grad  # nothing upstream of the embedding receives a gradient through it
    assert all(torch.equal(v, lite.state_dict()[k]) for k, v in running.items())  # BatchNorm stats untouched


def test_clip_embedder_in_parity_mode_equals_the_reference_computation():
    torch.manual_seed(0)
    embedder = build_visual_embedder(tiny_clip_cfg(mean=None, std=None, image_size=None))
    images = torch.randn(2, 3, 3, 32, 32)  # the reference feeds its already-normalised clip as-is
    b, t, c, h, w = images.shape
    expected = embedder.encoder(images.reshape(b * t, c, h, w))[1].reshape(b, t, -1).mean(1)
    assert torch.equal(embedder(images), expected)
    assert embedder.out_dim == TINY_CLIP_VISION["hidden_size"]  # pooler_output, no visual_projection


def test_clip_embedder_resizes_and_normalises_frames_itself():
    from msqnet.models.config import CLIP_MEAN, CLIP_STD

    embedder = build_visual_embedder(tiny_clip_cfg(image_size=32))
    clip = torch.rand(1, 2, 3, 48, 40)
    frames = F.interpolate(clip[0], size=(32, 32), mode="bilinear", align_corners=False, antialias=True)
    frames = (frames - torch.tensor(CLIP_MEAN).view(3, 1, 1)) / torch.tensor(CLIP_STD).view(3, 1, 1)
    expected = embedder.encoder(pixel_values=frames).pooler_output.mean(0, keepdim=True)
    torch.testing.assert_close(embedder(clip), expected, rtol=1e-5, atol=1e-6)


def test_clip_embedder_builds_from_a_save_pretrained_folder(tmp_path):
    model = CLIPVisionModel(CLIPVisionConfig(**TINY_CLIP_VISION)).eval()
    model.save_pretrained(tmp_path / "clip-vision")
    embedder = build_visual_embedder(VisualEmbedderConfig(kind="clip", pretrained=str(tmp_path / "clip-vision")))
    clip = torch.rand(2, 2, 3, 32, 32)
    frames = (clip.flatten(0, 1) - embedder.normalize.mean) / embedder.normalize.std
    expected = model(pixel_values=frames).pooler_output.view(2, 2, -1).mean(1)
    torch.testing.assert_close(embedder(clip), expected, rtol=1e-5, atol=1e-6)


def test_clip_embedder_names_the_fix_for_wrong_frame_size():
    embedder = build_visual_embedder(tiny_clip_cfg())
    with pytest.raises(ValueError, match="image_size: 32"):
        embedder(torch.rand(1, 2, 3, 48, 48))


def test_visual_embedder_rejects_input_that_is_not_a_clip():
    embedder = build_visual_embedder(tiny_clip_cfg())
    with pytest.raises(ValueError, match=r"\(B, T, 3, H, W\)"):
        embedder(torch.rand(2, 3, 32, 32))


def test_missing_pretrained_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="visual_embedder.pretrained"):
        build_visual_embedder(VisualEmbedderConfig(kind="clip", pretrained=str(tmp_path / "nowhere")))


def test_kind_none_builds_no_visual_embedder():
    assert build_visual_embedder(VisualEmbedderConfig(kind="none")) is None
