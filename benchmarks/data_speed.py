"""Clips per second of the msqnet data pipeline versus a naive decode-everything baseline.

Both pipelines load the same real videos (``../shared/videos``: h264, msmpeg4v3, cinepak), sample the
same T=16 TSN frames and apply the same transforms (train: multi-scale crop, flip, colour jitter,
grayscale to 224 px; test: short side 256, centre crop 224). They differ only in decoding:

* naive: decode every frame of the video to full-size RGB, then pick the 16 (what the reference and
  many codebases do);
* msqnet: ``read_frames`` decodes from the nearest keyframe only up to the last needed frame,
  colour-converts only the 16 wanted frames and resizes them to short side 256 in the same swscale
  pass.

Rows: TSN clips (spanning the whole video) in training and test, and (full run only) dense training
clips (16 frames at stride 2, a short window where keyframe seeking skips most of a long video).
Each configuration warms up on one batch (worker start-up, file cache) and then times ``--passes``
passes over ``--copies`` copies of every video. Run from the repository root:

    python benchmarks/data_speed.py            # full run (a few minutes on 2 cores)
    python benchmarks/data_speed.py --quick    # about a minute
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import av
import numpy as np
import torch

from msqnet.data.dataset import ClipDataset
from msqnet.data.loader import ClipSampler, build_loader
from msqnet.data.decode import decode_plan, probe
from msqnet.data.records import ClipRecord
from msqnet.data.config import SamplingConfig, TransformConfig
from msqnet.data.sampling import multiview_indices, sample_indices

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".webm", ".mov")


class NaiveClipDataset(ClipDataset):
    """The baseline: same sampling and transforms, but every frame is decoded to full-size RGB first."""

    def _load(self, record: ClipRecord, epoch: int, index: int) -> torch.Tensor:
        with av.open(record.source) as container:
            frames = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
        all_frames = torch.from_numpy(frames).permute(0, 3, 1, 2)  # (N, 3, H, W)
        if self.train:
            rng = np.random.default_rng([self.seed, epoch, index])
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch * 10_007 + index)
            idx = sample_indices(self.sampling, len(all_frames), train=True, rng=rng)
            return self._train_tf(all_frames[idx], g)
        s = self.sampling
        (idx,) = multiview_indices(len(all_frames), s.num_frames, 1, strategy=s.strategy, stride=s.stride)
        return self._test_tf(all_frames[idx])


def clips_per_second(ds: ClipDataset, num_workers: int, passes: int) -> float:
    """Steady-state clips/s of a loader over ``ds``: one warm-up pass, then ``passes`` timed passes."""
    loader = build_loader(ds, batch_size=4, num_workers=num_workers, sampler=ClipSampler(len(ds), seed=0))
    for _ in loader:  # warm-up: start the workers, fill the OS file cache and (msqnet) the probe cache
        break
    start = time.perf_counter()
    clips = 0
    for _ in range(passes):
        for batch in loader:
            clips += len(batch["uid"])
    elapsed = time.perf_counter() - start
    del loader  # stop persistent workers before the next configuration
    return clips / elapsed


def frames_decoded(records: list[ClipRecord], sampling: SamplingConfig) -> tuple[float, float]:
    """Average frames decoded per test clip: (naive, msqnet's plan)."""
    naive, ours = [], []
    for r in records:
        n = probe(r.source).num_frames
        (idx,) = multiview_indices(n, sampling.num_frames, 1, strategy=sampling.strategy, stride=sampling.stride)
        naive.append(n)
        ours.append(sum(run.num_decoded for run in decode_plan(r.source, idx)))
    return float(np.mean(naive)), float(np.mean(ours))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared" / "videos")
    parser.add_argument("--quick", action="store_true", help="one copy, one pass, no dense rows (about a minute)")
    parser.add_argument("--copies", type=int, default=None, help="copies of each video per pass (default 3, quick 1)")
    parser.add_argument("--passes", type=int, default=None, help="timed passes per configuration (default 2, quick 1)")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2], help="DataLoader worker counts to compare")
    args = parser.parse_args(argv)
    copies = args.copies or (1 if args.quick else 3)
    passes = args.passes or (1 if args.quick else 2)

    files = sorted(p for p in args.videos.iterdir() if p.suffix.lower() in VIDEO_EXTENSIONS)
    if not files:
        print(f"no videos in {args.videos}", file=sys.stderr)
        return 2
    records = [ClipRecord(f"{p.stem}#{c}", str(p), (0,)) for c in range(copies) for p in files]
    sampling = SamplingConfig(strategy="tsn", num_frames=16)
    transform = TransformConfig(size=224)  # short side 256
    print(f"videos: {', '.join(f'{p.name} ({probe(p).num_frames} fr, {probe(p).width}x{probe(p).height})' for p in files)}")
    print(f"clips per pass: {len(records)} (T=16, 224 px), timed passes: {passes}, torch threads: {torch.get_num_threads()}, "
          f"cpus: {os.cpu_count()}")
    # TSN clips span the whole video; a dense clip (16 frames, stride 2) is a short window, where
    # keyframe seeking lets msqnet skip most of a long video.
    dense = SamplingConfig(strategy="dense", num_frames=16, stride=2)
    for name, samp in (("tsn", sampling), ("dense", dense)):
        naive_frames, our_frames = frames_decoded(records[: len(files)], samp)
        print(f"frames decoded per {name} test clip (mean over videos): naive {naive_frames:.0f}, msqnet {our_frames:.0f}")
    print("frames colour-converted per clip: naive every decoded frame at full size, msqnet 16 at short side 256\n")

    modes = [("train tsn", sampling, True), ("test tsn", sampling, False)]
    if not args.quick:
        modes.append(("train dense", dense, True))
    rows = []
    for label, samp, train in modes:
        for workers in args.workers:
            speeds = []
            for cls in (NaiveClipDataset, ClipDataset):
                ds = cls(records, 1, sampling=samp, transform=transform, train=train, seed=0)
                speeds.append(clips_per_second(ds, workers, passes))
            rows.append((label, workers, *speeds))
            print(f"  measured {label:11s} workers={workers}: naive {speeds[0]:.2f}, msqnet {speeds[1]:.2f} clips/s", flush=True)

    print()
    header = f"| {'clips':11s} | workers | naive clips/s | msqnet clips/s | speed-up |"
    print(header)
    print("|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1]) + "|")
    for label, workers, naive, ours in rows:
        print(f"| {label:11s} | {workers:7d} | {naive:13.2f} | {ours:14.2f} | {ours / naive:7.1f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
