"""``model.explain``: per-label relevance in space and time, from real tiny encoders of every family."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from msqnet.data.timeline import WindowClips
from msqnet.inference.explain import METHODS, explain_clip, explanation_view, iter_explanations
from msqnet.models import create_model
from msqnet.models.attention import set_attention

from ..models.tiny import TINY_FRAMES, tiny_config
from ..videos import write_moving_video

CLASSES = ["walking", "running", "eating"]
PIXELS = {"kind": "frame_transformer", "config": {**TINY_FRAMES, "backbone": "none", "pixel_patch": 8}}
FAMILIES = {
    "timesformer": tiny_config("timesformer"),
    "videomae": tiny_config("videomae"),
    "frames_cnn": tiny_config("frames"),
    "frames_pixels": tiny_config("frames", video_encoder=PIXELS),
}


def _model(name: str, **fields):
    torch.manual_seed(0)
    cfg = FAMILIES[name] if not fields else tiny_config(name if name in ("timesformer", "videomae") else "frames", **fields)
    return create_model(cfg, CLASSES).eval()


def _clip(seed: int = 0) -> torch.Tensor:
    return (torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(seed)) * 255).to(torch.uint8)


@pytest.fixture(scope="module")
def tsf():
    return _model("timesformer")


def test_decoder_attention_is_opt_in_and_leaves_the_forward_unchanged(tsf):
    video = _clip().unsqueeze(0)
    with torch.no_grad():
        before = tsf(video)
        asked = tsf.decode(tsf.encode(video), return_attention=True)
        after = tsf(video)
    assert before.cross_attention is None
    assert torch.equal(before.logits, after.logits)  # no hook left behind
    assert torch.allclose(asked.logits, before.logits, atol=1e-5)
    assert asked.cross_attention.shape == (1, 1, len(CLASSES), 4)  # (B, decoder layers, C, T')
    assert torch.allclose(asked.cross_attention.sum(-1), torch.ones(1, 1, len(CLASSES)))


@pytest.mark.parametrize("family", list(FAMILIES))
def test_every_encoder_family_explains_each_label_in_space_and_time(family):
    model = _model(family)
    clip = _clip()
    results = explain_clip(model, clip)
    expected = torch.sigmoid(model(clip.unsqueeze(0)).logits)[0].detach().numpy()
    time_tokens = 2 if family == "videomae" else 4  # VideoMAE: one token per 2-frame tubelet
    assert set(results) == set(METHODS)
    for items in results.values():
        assert [x.label for x in items] == CLASSES
        for item, p in zip(items, expected):
            assert item.probability == pytest.approx(float(p), abs=1e-5)
            assert item.tokens.shape == (time_tokens, 4, 4) and (item.tokens >= 0).all()
            assert item.spatial.shape == (4, 32, 32) and item.spatial.max() == pytest.approx(1.0)
            assert item.spatial.min() >= 0
            assert item.temporal.shape == (4,) and item.temporal.sum() == pytest.approx(1.0)
            assert item.cross_attention.shape == (time_tokens,) and item.cross_attention.sum() == pytest.approx(1.0)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_with_spatiotemporal_memory_each_label_attends_over_space_and_time(family):
    torch.manual_seed(0)
    model = create_model(replace(FAMILIES[family], pooling="spatiotemporal"), CLASSES).eval()
    results = explain_clip(model, _clip())
    time_tokens = 2 if family == "videomae" else 4
    for items in results.values():
        for item in items:
            assert item.tokens.shape == (time_tokens, 4, 4)
            assert item.cross_attention.shape == (time_tokens, 4, 4)  # the query's weights over (T', h, w)
            assert item.cross_attention.sum() == pytest.approx(1.0, abs=1e-5)


def test_gradcam_maps_are_specific_to_each_label(tsf):
    items = explain_clip(tsf, _clip(), methods=["gradcam"])["gradcam"]
    assert not np.allclose(items[0].tokens, items[1].tokens)


@pytest.mark.parametrize("family", ["timesformer", "videomae"])
def test_the_attention_rollout_reads_is_the_encoders_own(family):
    from msqnet.inference.explain import _recording

    model = set_attention(_model(family), "eager")
    video = _clip().unsqueeze(0).float() / 255
    enc = model.video_encoder
    with torch.no_grad():
        own = enc.backbone(pixel_values=enc.normalize(video), output_attentions=True).attentions
        with _recording(model, want_attention=True) as rec:
            enc(video)
    read = [a for kind, a in rec["layers"] if kind != "time"]  # TimeSformer reports its spatial attention
    assert len(read) == len(own)
    for mine, theirs in zip(read, own):
        assert torch.allclose(mine, theirs.mean(dim=1), atol=1e-6)


def test_rollout_through_divided_space_time_attention_keeps_every_row_a_distribution(tsf):
    from msqnet.inference.explain import _recording, _rollout

    with torch.no_grad(), _recording(tsf, want_attention=True) as rec:
        tsf.encode(_clip().unsqueeze(0))
    rolled = _rollout(rec["layers"], rec["tokens"])
    assert rolled.shape == (1 + 16 * 4, 1 + 16 * 4)
    assert torch.allclose(rolled.sum(dim=1), torch.ones(65), atol=1e-5) and (rolled >= 0).all()


def test_an_open_vocabulary_model_explains_new_class_names():
    model = _model("timesformer", head="text", trainable_label_embeddings=False)
    items = model.explain(_clip(), labels=["a rabbit stretching", "walking"], method="rollout").labels
    assert [x.label for x in items] == ["a rabbit stretching", "walking"]


def test_a_closed_vocabulary_model_refuses_new_class_names(tsf):
    with pytest.raises(ValueError, match="can only score its training classes"):
        tsf.explain(_clip(), labels=["a rabbit stretching"])


def test_a_clip_of_the_wrong_shape_is_refused_with_its_shape(tsf):
    with pytest.raises(ValueError, match=r"\(T, 3, S, S\), got \(3, 32, 32\)"):
        tsf.explain(_clip()[0])


def test_a_long_video_is_explained_window_by_window_as_the_timeline_lays_them(tsf, tmp_path):
    video = write_moving_video(tmp_path / "long.mp4", seconds=3.0, size=(48, 32))
    explanations = list(iter_explanations(tsf, video, ["eating"], window=1.0))
    timeline = WindowClips(video, explanation_view(tsf), num_frames=4, size=32, window=1.0, stride=1.0)
    expected = list(timeline)
    assert [(e.start, e.end) for e in explanations] == [(w.start_s, w.end_s) for w, _ in expected]
    for e, (_, clips) in zip(explanations, expected):
        assert np.array_equal(e.frames, clips[0].permute(0, 2, 3, 1).numpy())
        assert e.frame_indices[0] >= round(e.start * 25) - 1 and [x.label for x in e.labels] == ["eating"]
