"""ClipDataset and its loader: item layout, segments, seeded reproducibility across workers, skips."""
from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
from PIL import Image

from msqnet.data.dataset import ClipDataset, SkipTally
from msqnet.data.loader import ClipSampler, build_loader
from msqnet.data.decode import DecodeError
from msqnet.data.records import ClipRecord
from msqnet.data.config import SamplingConfig, TransformConfig

NAMES = ["bikes.mp4", "carphone_pristine.mp4", "tree.avi", "vtest.avi"]
TINY = TransformConfig(size=16, short_side=20)
PLAIN = TransformConfig(size=8, short_side=8, train_crop="center", hflip=False, color_jitter=(0, 0, 0, 0), grayscale_prob=0)


def video_records(videos: Path) -> list[ClipRecord]:
    return [ClipRecord(Path(n).stem, str(videos / n), (i % 3, 3)) for i, n in enumerate(NAMES)]


@pytest.fixture(scope="module")
def counting_folder(tmp_path_factory) -> Path:
    """A 48-frame folder whose frame i is a flat image of grey level 5 * i (so pixels name the frame)."""
    folder = tmp_path_factory.mktemp("frames") / "clip"
    folder.mkdir()
    for i in range(48):
        Image.new("RGB", (12, 10), (5 * i,) * 3).save(folder / f"img_{i + 1:05d}.png")
    return folder


def frame_ids(video: torch.Tensor) -> list[int]:
    """Recover frame indices from a counting-folder clip (T, 3, S, S)."""
    return [int(v) // 5 for v in video[:, 0, 0, 0]]


def test_train_item_holds_uint8_clip_multi_hot_target_index_and_uid(shared_videos):
    ds = ClipDataset(video_records(shared_videos), 5, sampling=SamplingConfig(num_frames=4), transform=TINY, train=True)
    item = ds[1]
    assert item["video"].dtype == torch.uint8 and item["video"].shape == (4, 3, 16, 16)
    assert item["target"].tolist() == [0.0, 1.0, 0.0, 1.0, 0.0]
    assert (item["index"], item["uid"]) == (1, "carphone_pristine")


def test_single_label_targets_are_class_ids(shared_videos):
    recs = [ClipRecord("a", str(shared_videos / "tree.avi"), (2,))]
    ds = ClipDataset(recs, 3, sampling=SamplingConfig(num_frames=2), transform=TINY, train=False, multi_label=False)
    target = ds[0]["target"]
    assert target.dtype == torch.int64 and target.item() == 2


def test_labels_outside_the_label_space_or_not_single_are_rejected(shared_videos):
    recs = [ClipRecord("bad", str(shared_videos / "tree.avi"), (0, 7))]
    with pytest.raises(ValueError, match=r"clip bad .*label id 7 outside \[0, 5\)"):
        ClipDataset(recs, 5, sampling=SamplingConfig(), transform=TINY, train=True)
    with pytest.raises(ValueError, match="exactly one label"):
        ClipDataset(recs, 9, sampling=SamplingConfig(), transform=TINY, train=True, multi_label=False)


def test_test_mode_with_clips_and_crops_returns_all_views(shared_videos):
    sampling = SamplingConfig(num_frames=3, test_clips=2, test_crops=3)
    ds = ClipDataset(video_records(shared_videos)[:1], 4, sampling=sampling, transform=TINY, train=False)
    video = ds[0]["video"]
    assert video.shape == (6, 3, 3, 16, 16)  # (V = 2 clips x 3 crops, T, 3, S, S)
    assert not torch.equal(video[0], video[3])  # different temporal clips
    assert torch.equal(ds[0]["video"], video)  # test mode is deterministic


def test_segment_records_sample_only_inside_their_segment(counting_folder):
    # 48 frames at 8 fps; the segment [2 s, 4 s) is frames 16..31.
    rec = ClipRecord("seg", str(counting_folder), (0,), start=2.0, end=4.0, meta={"fps": "8"})
    ds = ClipDataset([rec], 1, sampling=SamplingConfig(num_frames=4), transform=PLAIN, train=True, seed=3)
    for epoch in range(5):
        ids = frame_ids(ds[(epoch, 0)]["video"])
        assert all(16 <= i < 32 for i in ids) and ids == sorted(ids)
    test = ClipDataset([rec], 1, sampling=SamplingConfig(num_frames=4), transform=PLAIN, train=False)
    assert frame_ids(test[0]["video"]) == [18, 22, 26, 30]


def test_randomness_is_a_function_of_seed_epoch_and_index(counting_folder):
    rec = ClipRecord("c", str(counting_folder), (0,))
    sampling = SamplingConfig(num_frames=6)
    a = ClipDataset([rec], 1, sampling=sampling, transform=PLAIN, train=True, seed=1)
    b = ClipDataset([rec], 1, sampling=sampling, transform=PLAIN, train=True, seed=1)
    assert torch.equal(a[0]["video"], b[0]["video"])
    epochs = {tuple(frame_ids(a[(e, 0)]["video"])) for e in range(6)}  # (epoch, index) keys
    assert len(epochs) > 1
    c = ClipDataset([rec], 1, sampling=sampling, transform=PLAIN, train=True, seed=2)
    assert any(not torch.equal(a[(e, 0)]["video"], c[(e, 0)]["video"]) for e in range(4))


def run_epochs(ds: ClipDataset, num_workers: int, epochs: range, seed: int = 5) -> list[tuple]:
    loader = build_loader(ds, batch_size=2, num_workers=num_workers, sampler=ClipSampler(len(ds), seed=seed))
    out = []
    for epoch in epochs:
        loader.sampler.set_epoch(epoch)
        for batch in loader:
            out.append((epoch, batch["uid"], batch["video"].clone(), batch["target"].clone()))
    return out


def same_batches(x: list[tuple], y: list[tuple]) -> bool:
    return len(x) == len(y) and all(
        a[0] == b[0] and a[1] == b[1] and torch.equal(a[2], b[2]) and torch.equal(a[3], b[3]) for a, b in zip(x, y)
    )


def test_loader_batches_are_identical_with_zero_or_two_workers(shared_videos):
    ds = ClipDataset(video_records(shared_videos), 4, sampling=SamplingConfig(num_frames=2), transform=TINY,
                     train=True, seed=11, decode_size=20)
    single = run_epochs(ds, 0, range(2))
    workers = run_epochs(ds, 2, range(2))
    assert same_batches(single, workers)
    assert [b[1] for b in single[:2]] != [b[1] for b in single[2:]]  # epochs reshuffle


def test_loader_resumed_at_an_epoch_repeats_that_epoch(shared_videos):
    ds = ClipDataset(video_records(shared_videos), 4, sampling=SamplingConfig(num_frames=2), transform=TINY,
                     train=True, seed=11, decode_size=20)
    full = run_epochs(ds, 0, range(3))
    resumed = run_epochs(ds, 0, range(2, 3))
    assert same_batches(full[-2:], resumed)


def test_on_error_raise_names_the_bad_file(shared_videos, tmp_path):
    noise = tmp_path / "noise.avi"
    noise.write_bytes(bytes(range(256)) * 400)
    ds = ClipDataset([ClipRecord("n", str(noise), (0,))], 1, sampling=SamplingConfig(num_frames=2), transform=TINY, train=True)
    with pytest.raises(DecodeError, match="noise.avi"):
        ds[0]


def test_on_error_skip_logs_drops_and_counts_bad_clips(shared_videos, tmp_path, caplog):
    cut = tmp_path / "cut.avi"
    data = (shared_videos / "vtest.avi").read_bytes()
    cut.write_bytes(data[: len(data) // 3])
    recs = video_records(shared_videos)[:2] + [
        ClipRecord("gone", str(tmp_path / "gone.mp4"), (0,)),
        ClipRecord("cut", str(cut), (1,)),
    ]
    ds = ClipDataset(recs, 4, sampling=SamplingConfig(num_frames=2), transform=TINY, train=True, on_error="skip")
    tally = SkipTally()
    seen = []
    with caplog.at_level(logging.WARNING, logger="msqnet.data.dataset"):
        for batch in build_loader(ds, batch_size=2, num_workers=0, sampler=ClipSampler(len(ds), shuffle=False)):
            tally.update(batch)
            seen += batch["uid"]
            assert batch["video"].shape[1:] == (2, 3, 16, 16) and len(batch["target"]) == len(batch["uid"])
    assert seen == ["bikes", "carphone_pristine"]
    assert sorted(tally.uids) == ["cut", "gone"]
    logged = caplog.text
    assert "gone.mp4" in logged and "cut.avi" in logged and "truncated" in logged
