"""The model's small parts: token pooling, time-embedding interpolation, position encoding, heads."""
from __future__ import annotations

import math

import pytest
import torch

from msqnet.models.decoder import SinusoidalPositionalEncoding
from msqnet.models.heads import GroupWiseLinear, TextConditionedHead
from msqnet.models.normalize import Normalize
from msqnet.models.pooling import ReferencePool, SpatioTemporalTokens, TemporalPool
from msqnet.models.query import QueryBuilder
from msqnet.models.video_encoder import VideoTokens, interpolate_time_embeddings


def _timesformer_tokens(b=2, t=4, n=6, d=3) -> VideoTokens:
    """Tokens in HF TimeSformer order [CLS, (patch, frame)] whose value is the frame index."""
    frame_of_token = torch.arange(t).repeat(n)  # frames innermost: (patch0: f0..f3, patch1: ...)
    body = frame_of_token.float().view(1, n * t, 1).expand(b, n * t, d)
    cls = torch.full((b, 1, d), 100.0)
    return VideoTokens(torch.cat([cls, body], 1), has_cls=True, num_time=t, num_space=n, time_innermost=True)


def test_temporal_pool_gives_one_token_per_frame():
    pooled = TemporalPool()(_timesformer_tokens())
    assert pooled.shape == (2, 4, 3)
    assert torch.equal(pooled[0, :, 0], torch.tensor([0.0, 1.0, 2.0, 3.0]))


def test_temporal_pool_can_add_cls():
    pooled = TemporalPool(add_cls=True)(_timesformer_tokens())
    assert torch.equal(pooled[0, :, 0], torch.tensor([100.0, 101.0, 102.0, 103.0]))


def test_temporal_pool_handles_time_outermost_layout():
    b, t, n, d = 1, 3, 5, 2
    x = torch.arange(t).repeat_interleave(n).float().view(1, t * n, 1).expand(b, t * n, d)
    pooled = TemporalPool()(VideoTokens(x, has_cls=False, num_time=t, num_space=n, time_innermost=False))
    assert torch.equal(pooled[0, :, 0], torch.tensor([0.0, 1.0, 2.0]))


def test_spatiotemporal_memory_keeps_every_patch_token_time_major():
    v = _timesformer_tokens(t=4, n=6)
    memory = SpatioTemporalTokens()(v)
    assert memory.shape == (2, 4 * 6, 3)  # CLS dropped, one token per (frame, patch)
    assert torch.equal(memory[0, :, 0], torch.arange(4.0).repeat_interleave(6))  # index t * N + n
    assert torch.equal(memory.view(2, 4, 6, 3).mean(dim=2), TemporalPool()(v))  # per-frame mean: the temporal pool


def test_reference_pool_mixes_frames_as_the_reference_does():
    # Each reference bin averages a contiguous band of the token axis: with frames innermost every
    # bin sees all frames, so per-bin means are (nearly) the same instead of 0, 1, 2, 3.
    pooled = ReferencePool(4)(_timesformer_tokens())
    assert pooled.shape == (2, 4, 3)
    assert pooled[0, 1:, 0].std() < 0.5 and not torch.equal(pooled[0, :, 0], torch.arange(4.0))


def test_time_embedding_interpolation_keeps_endpoints_and_shape():
    e = torch.linspace(0, 1, 8).view(1, 8, 1).repeat(1, 1, 4)
    out = interpolate_time_embeddings(e, 16)
    assert out.shape == (1, 16, 4)
    assert out[0, 0, 0] == pytest.approx(0.0) and out[0, -1, 0] == pytest.approx(1.0)
    assert torch.all(out[0, 1:, 0] >= out[0, :-1, 0])
    assert interpolate_time_embeddings(e, 8) is e


def test_positional_encoding_is_the_sinusoidal_table():
    pe = SinusoidalPositionalEncoding(8, dropout=0.0)
    out = pe(torch.zeros(1, 3, 8))
    assert out[0, 2, 0] == pytest.approx(math.sin(2.0))
    assert out[0, 2, 1] == pytest.approx(math.cos(2.0))
    with pytest.raises(ValueError, match="max_len"):
        SinusoidalPositionalEncoding(8, max_len=4)(torch.zeros(1, 5, 8))


def test_group_wise_linear_is_a_per_class_dot_product():
    head = GroupWiseLinear(3, 4)
    h = torch.randn(2, 3, 4)
    expected = torch.einsum("bcd,cd->bc", h, head.W[0]) + head.b
    assert torch.allclose(head(h), expected)
    bound = 1 / math.sqrt(4)
    assert head.W.abs().max() <= bound and head.b.abs().max() <= bound
    with pytest.raises(ValueError, match="head: text"):
        head(torch.randn(2, 5, 4))


def test_text_head_scores_any_number_of_classes_from_their_text():
    head = TextConditionedHead(text_dim=6, dim=4)
    logits = head(torch.randn(2, 7, 4), torch.randn(7, 6))
    assert logits.shape == (2, 7)
    with pytest.raises(ValueError, match="label embeddings"):
        head(torch.randn(2, 7, 4))


def test_multimodal_queries_share_one_video_shift():
    qb = QueryBuilder(mode="multimodal", label_embed=torch.randn(3, 5), visual_dim=2, d_model=4,
                      trainable=True, num_classes=3)
    assert isinstance(qb.label_embeddings, torch.nn.Parameter) and qb.proj.in_features == 7
    v1, v2 = torch.zeros(1, 2), torch.ones(1, 2)
    q1, q2 = qb(1, v1), qb(1, v2)
    shift = q2 - q1  # W_v v is the same for every class
    torch.testing.assert_close(shift[0, 0], shift[0, 1])
    torch.testing.assert_close(shift[0, 1], shift[0, 2])


def test_text_queries_are_a_fixed_buffer_when_not_trainable():
    qb = QueryBuilder(mode="text", label_embed=torch.randn(3, 5), visual_dim=2, d_model=4, trainable=False,
                      num_classes=3)
    assert "label_embeddings" in dict(qb.named_buffers()) and qb.proj.in_features == 5
    assert qb(2).shape == (2, 3, 4)


def test_normalize_scales_uint8_and_can_be_identity():
    x = torch.full((1, 3, 2, 2), 255, dtype=torch.uint8)
    assert torch.allclose(Normalize(None, None)(x), torch.ones(1, 3, 2, 2))
    out = Normalize((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))(x)
    assert torch.allclose(out, torch.full_like(out, 2.0))
