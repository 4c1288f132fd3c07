"""How fast ``msqnet synth`` generates the benchmark: total time, clips per second, and where it goes.

Two measurements:

1. The full generation (the demo's default set: 1,500 train + 300 test_seen + 300 test_unseen_actor
   clips, 16 frames, 112 px, H.264 lossless) with ``--workers`` processes, progress bar on, exactly
   as ``msqnet synth`` runs it; wall time includes writing every annotation file and the datasheet.
2. A single-process breakdown on ``--profile-clips`` clips: scenario sampling, rendering (PIL),
   and encoding (RGB->YUV + x264), per clip.

Run from the repository root:

    python benchmarks/synth_speed.py                      # the demo set (about a minute on 2 cores)
    python benchmarks/synth_speed.py --clips 300 --test-clips 60 --size 64
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

from msqnet.synth import SynthConfig, generate_dataset
from msqnet.synth.generate import sample_split_clip
from msqnet.synth.render import render_clip
from msqnet.synth.video import write_mp4


def _profile(cfg: SynthConfig, clips: int, folder: Path) -> dict[str, float]:
    """Seconds per clip of each stage, in this process."""
    totals = {"sample": 0.0, "render": 0.0, "encode": 0.0}
    for i in range(clips):
        t0 = time.perf_counter()
        spec = sample_split_clip(cfg, "train", i)
        t1 = time.perf_counter()
        frames = render_clip(spec, cfg.size, cfg.supersample).frames
        t2 = time.perf_counter()
        write_mp4(folder / f"{i}.mp4", frames, cfg.fps, cfg.crf)
        t3 = time.perf_counter()
        totals["sample"] += t1 - t0
        totals["render"] += t2 - t1
        totals["encode"] += t3 - t2
    return {k: v / clips for k, v in totals.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=1500)
    parser.add_argument("--test-clips", type=int, default=300)
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--profile-clips", type=int, default=40)
    parser.add_argument("--out", default=None, help="where to write (default: a temp folder, deleted after)")
    args = parser.parse_args()

    cfg = SynthConfig(clips=args.clips, test_clips=args.test_clips, size=args.size, frames=args.frames,
                      workers=args.workers, overwrite=True)
    tmp = Path(tempfile.mkdtemp(prefix="synth_speed_"))
    out = Path(args.out) if args.out else tmp / "data"
    try:
        print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores visible; "
              f"workers={args.workers}")
        summary = generate_dataset(out, cfg)
        print(summary.format())
        total = summary.clips
        print(f"\nfull generation: {total} clips ({args.frames} frames, {args.size} px) in {summary.seconds:.1f} s "
              f"= {summary.clips_per_second:.1f} clips/s with {summary.workers} workers; "
              f"{summary.bytes_written / 2**20:.1f} MiB on disk ({summary.bytes_written / total / 1024:.1f} KiB/clip)")

        prof = _profile(cfg, args.profile_clips, tmp)
        per_clip = sum(prof.values())
        print(f"\nsingle-process breakdown over {args.profile_clips} clips (ms per clip):")
        for stage, sec in prof.items():
            print(f"  {stage:<7} {1000 * sec:7.1f} ms  ({100 * sec / per_clip:4.1f}%)")
        print(f"  total   {1000 * per_clip:7.1f} ms  -> {1 / per_clip:.1f} clips/s per process")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
