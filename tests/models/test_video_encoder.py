"""Video encoders build from a config, a local folder (the real from_pretrained path) or a hub id."""
from __future__ import annotations

import pytest
import torch
from transformers import TimesformerConfig, TimesformerModel, VideoMAEConfig, VideoMAEModel

from msqnet.models.config import VideoEncoderConfig
from msqnet.models.video_encoder import build_video_encoder

TINY_TSF = dict(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                intermediate_size=64)
TINY_MAE = dict(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                intermediate_size=64, tubelet_size=2)


@pytest.fixture(scope="module")
def pretrained_timesformer(tmp_path_factory):
    """A tiny TimeSformer 'checkpoint' trained on 4 frames, saved with save_pretrained."""
    torch.manual_seed(0)
    model = TimesformerModel(TimesformerConfig(num_frames=4, **TINY_TSF))
    with torch.no_grad():
        model.embeddings.time_embeddings.copy_(torch.linspace(-1, 1, 4).view(1, 4, 1).expand(1, 4, 32))
    folder = tmp_path_factory.mktemp("tsf")
    model.save_pretrained(folder)
    return folder, model


def test_random_init_from_config_gives_per_frame_token_layout():
    enc = build_video_encoder(VideoEncoderConfig(config=TINY_TSF), num_frames=3, image_size=32)
    out = enc(torch.rand(2, 3, 3, 32, 32))
    assert out.tokens.shape == (2, 1 + 16 * 3, 32)  # CLS + (16 patches x 3 frames)
    assert (out.has_cls, out.num_time, out.num_space, out.time_innermost) == (True, 3, 16, True)


def test_from_local_folder_with_same_frames_reproduces_the_saved_model(pretrained_timesformer):
    folder, saved = pretrained_timesformer
    enc = build_video_encoder(VideoEncoderConfig(pretrained=str(folder), mean=None, std=None), num_frames=4,
                              image_size=32).eval()
    x = torch.rand(1, 4, 3, 32, 32)
    assert torch.allclose(enc(x).tokens, saved.eval()(pixel_values=x).last_hidden_state, atol=1e-6)


def test_other_frame_count_interpolates_time_embeddings(pretrained_timesformer):
    folder, saved = pretrained_timesformer
    enc = build_video_encoder(VideoEncoderConfig(pretrained=str(folder)), num_frames=8, image_size=32)
    te = enc.backbone.embeddings.time_embeddings[0, :, 0]
    assert te.shape == (8,)
    assert te[0] < -0.5 and te[-1] > 0.5 and torch.all(te[1:] >= te[:-1])  # a smooth ramp, not zeros
    assert torch.equal(enc.backbone.embeddings.position_embeddings, saved.embeddings.position_embeddings)


def test_reference_mode_restarts_time_embeddings_at_zero(pretrained_timesformer):
    folder, saved = pretrained_timesformer
    enc = build_video_encoder(VideoEncoderConfig(pretrained=str(folder), time_embeddings="zero"), num_frames=8,
                              image_size=32)
    assert torch.count_nonzero(enc.backbone.embeddings.time_embeddings) == 0
    assert torch.equal(enc.backbone.embeddings.patch_embeddings.projection.weight,
                       saved.embeddings.patch_embeddings.projection.weight)


def test_videomae_from_local_folder_has_time_outermost_tubelets(tmp_path):
    VideoMAEModel(VideoMAEConfig(num_frames=4, **TINY_MAE)).save_pretrained(tmp_path)
    enc = build_video_encoder(VideoEncoderConfig(kind="videomae", pretrained=str(tmp_path)), num_frames=8,
                              image_size=32)
    out = enc(torch.rand(1, 8, 3, 32, 32))
    assert out.tokens.shape == (1, 4 * 16, 32)  # (T/tubelet) x patches, no CLS
    assert (out.has_cls, out.num_time, out.time_innermost) == (False, 4, False)


def test_wrong_frame_count_is_a_clear_error():
    enc = build_video_encoder(VideoEncoderConfig(config=TINY_TSF), num_frames=4, image_size=32)
    with pytest.raises(ValueError, match="T=4 frames, got a clip with T=5"):
        enc(torch.rand(1, 5, 3, 32, 32))
    with pytest.raises(ValueError, match="tubelet_size"):
        build_video_encoder(VideoEncoderConfig(kind="videomae", config=TINY_MAE), num_frames=5, image_size=32)


def test_missing_local_folder_fails_loudly(tmp_path):
    with pytest.raises((OSError, ValueError)):
        build_video_encoder(VideoEncoderConfig(pretrained=str(tmp_path / "absent")), num_frames=4, image_size=32)


def test_missing_weights_are_refused_not_silently_reinitialised(pretrained_timesformer):
    folder, _ = pretrained_timesformer  # one layer; asking for two leaves layer 1 without weights
    with pytest.raises(ValueError, match="missing weights"):
        build_video_encoder(VideoEncoderConfig(pretrained=str(folder), config={"num_hidden_layers": 2}),
                            num_frames=4, image_size=32)
