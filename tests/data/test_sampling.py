"""Frame sampling strategies, the short-clip repeat policy and multi-view testing."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from msqnet.config_loader import ConfigError, from_dict
from msqnet.data.sampling import (
    SamplingConfig,
    aggregate_views,
    dense_indices,
    multiview_indices,
    sample_indices,
    tsn_indices,
    uniform_indices,
)


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def test_tsn_test_takes_the_middle_frame_of_each_equal_segment():
    assert tsn_indices(80, 8, train=False) == [5, 15, 25, 35, 45, 55, 65, 75]


def test_tsn_train_takes_one_frame_inside_each_segment_and_varies():
    draws = [tsn_indices(100, 10, train=True, rng=rng(s)) for s in range(20)]
    for idx in draws:
        assert [i // 10 for i in idx] == list(range(10))
    assert len({tuple(d) for d in draws}) > 15


def test_train_sampling_is_reproducible_from_the_rng_seed():
    for fn in (tsn_indices, uniform_indices):
        assert fn(500, 16, train=True, rng=rng(3)) == fn(500, 16, train=True, rng=rng(3))
    assert dense_indices(500, 16, 2, train=True, rng=rng(3)) == dense_indices(500, 16, 2, train=True, rng=rng(3))


def test_train_sampling_without_rng_is_refused():
    with pytest.raises(ValueError, match="needs an rng"):
        tsn_indices(100, 8, train=True, rng=None)


def test_short_clip_repeats_frames_in_order():
    idx = tsn_indices(5, 16, train=False)
    assert idx == [0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4]
    assert tsn_indices(5, 16, train=True, rng=rng()) == idx  # nothing to jitter
    assert uniform_indices(5, 16, train=False) == idx
    assert tsn_indices(1, 4, train=False) == [0, 0, 0, 0]


def test_dense_test_window_is_centred_and_contiguous_with_stride():
    idx = dense_indices(100, 8, 4, train=False)
    assert np.all(np.diff(idx) == 4)
    span = idx[-1] - idx[0] + 1
    assert idx[0] == (100 - span) // 2


def test_dense_train_window_fits_the_clip():
    for s in range(50):
        idx = dense_indices(40, 8, 5, train=True, rng=rng(s))
        assert idx[0] >= 0 and idx[-1] < 40 and np.all(np.diff(idx) == 5)


def test_dense_window_longer_than_clip_repeats_strided_frames_in_order():
    assert dense_indices(10, 8, 4, train=False) == [0, 0, 0, 4, 4, 4, 8, 8]


def test_uniform_train_keeps_equal_spacing():
    idx = uniform_indices(160, 8, train=True, rng=rng(1))
    assert set(np.diff(idx).tolist()) <= {19, 20, 21}


def test_sample_indices_follows_the_config_strategy():
    n = 300
    assert sample_indices(SamplingConfig(strategy="tsn", num_frames=8), n, train=False) == tsn_indices(n, 8, train=False)
    dense = SamplingConfig(strategy="dense", num_frames=8, stride=3)
    assert sample_indices(dense, n, train=False) == dense_indices(n, 8, 3, train=False)


def test_multiview_single_clip_equals_the_test_clip():
    assert multiview_indices(300, 8, 1) == [tsn_indices(300, 8, train=False)]
    assert multiview_indices(300, 8, 1, strategy="dense", stride=2) == [dense_indices(300, 8, 2, train=False)]


def test_multiview_clips_are_distinct_and_spread_over_the_video():
    views = multiview_indices(300, 4, 3)
    assert len(views) == 3 and len({tuple(v) for v in views}) == 3
    assert views[0][0] < views[1][0] < views[2][0]  # ordered inside the first segment
    dense = multiview_indices(300, 4, 3, strategy="dense", stride=2)
    assert dense[0][0] == 0 and dense[-1][-1] == 299


def test_aggregate_views_by_mean_and_max():
    scores = torch.tensor([[[0.1, 0.9], [0.3, 0.5]]])  # (B=1, V=2, C=2)
    assert torch.allclose(aggregate_views(scores, "mean"), torch.tensor([[0.2, 0.7]]))
    assert torch.equal(aggregate_views(scores, "max"), torch.tensor([[0.3, 0.9]]))


def test_sampling_config_validates_its_fields():
    cfg = from_dict(SamplingConfig, {"strategy": "dense", "num_frames": 8, "test_clips": 2, "test_crops": 3})
    assert cfg.num_views == 6
    with pytest.raises(ConfigError, match="test_crops"):
        from_dict(SamplingConfig, {"test_crops": 2})
    with pytest.raises(ConfigError, match="num_frames"):
        SamplingConfig(num_frames=0)
