"""ClipSampler: per-epoch random draws or annotation order, equal disjoint shards per process, exact mid-epoch resume."""
from __future__ import annotations

from torch.utils.data import DistributedSampler

from msqnet.data.loader import ClipSampler


def _indices(sampler: ClipSampler) -> list[int]:
    return [i for _, i in sampler]


def test_an_epoch_is_a_permutation_of_the_split_that_changes_every_epoch():
    s = ClipSampler(10, seed=1)
    s.set_epoch(0)
    first = _indices(s)
    s.set_epoch(1)
    second = _indices(s)
    assert sorted(first) == sorted(second) == list(range(10))
    assert first != second


def test_every_sample_carries_its_epoch():
    s = ClipSampler(5, seed=1)
    s.set_epoch(3)
    assert {e for e, _ in s} == {3}


def test_clips_per_epoch_draws_distinct_clips_when_the_split_is_larger():
    s = ClipSampler(100, seed=0, clips_per_epoch=25)
    s.set_epoch(0)
    drawn = _indices(s)
    assert len(drawn) == 25 and len(set(drawn)) == 25


def test_an_epoch_longer_than_the_split_goes_through_the_split_again():
    s = ClipSampler(4, seed=0, clips_per_epoch=10)
    s.set_epoch(0)
    drawn = _indices(s)
    assert len(drawn) == 10 and sorted(drawn[:4]) == [0, 1, 2, 3]


def test_process_shards_are_equal_sized_and_cover_the_epoch():
    whole = ClipSampler(11, seed=2)
    whole.set_epoch(4)
    shards = []
    for rank in range(3):
        s = ClipSampler(11, seed=2, rank=rank, world_size=3)
        s.set_epoch(4)
        shards.append(_indices(s))
    assert {len(x) for x in shards} == {4}  # 11 padded to 12
    assert set().union(*shards) == set(range(11))
    interleaved = [shards[r][k] for k in range(4) for r in range(3)]
    assert interleaved[:11] == _indices(whole)  # the same order, dealt round-robin


def test_skip_resumes_with_exactly_the_samples_not_yet_consumed():
    s = ClipSampler(12, seed=5, clips_per_epoch=9, rank=1, world_size=2)
    s.set_epoch(2)
    full = list(s)
    s.set_epoch(2, skip=3)
    assert list(s) == full[3:]


def test_the_order_depends_only_on_seed_and_epoch():
    a, b = ClipSampler(30, seed=7), ClipSampler(30, seed=7)
    a.set_epoch(5)
    b.set_epoch(5)
    assert _indices(a) == _indices(b)


def test_without_shuffle_an_epoch_is_annotation_order():
    s = ClipSampler(6, shuffle=False)
    s.set_epoch(3)
    assert _indices(s) == list(range(6))


def test_evaluation_shards_are_those_of_a_distributed_sampler_padding_included():
    for rank in range(4):
        s = ClipSampler(10, shuffle=False, rank=rank, world_size=4)
        reference = DistributedSampler(range(10), num_replicas=4, rank=rank, shuffle=False)
        assert _indices(s) == list(reference)  # 10 clips padded to 12 by repeating the first two
