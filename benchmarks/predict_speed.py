"""End-to-end ``msqnet predict`` on shared real videos: clips/s, decoding overlapped with the model, and hours
of footage scored per hour of this machine.

``--footage real`` (default): the 192 surveillance clips of ``shared/real/fight_surveillance`` (real CCTV,
2 s each, H.264 320x240 to 1280x720; ``--limit`` takes the first N). ``--footage codecs``: the five shared
videos (h264 up to 1280x720, cinepak, msmpeg4v3). Each video is scored ``--repeat`` times (distinct
symlinked paths, so nothing is cached between them) with a randomly initialised ``--model`` checkpoint
and its default test view (one clip per video), at ``predict``'s default precision. Prints, in one run:
decoding alone, the model alone, ``predict`` with decoding in the main process (``--num-workers 0``) and
with ``--workers`` DataLoader processes decoding while the model runs, as clips/s; how much of the
shorter stage the workers hid behind the longer one (overlap); and the footage's seconds over predict's.

    python benchmarks/predict_speed.py [--footage real] [--limit 96] [--workers 2] [--model msqnet-lite]
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import av
import torch

from msqnet.checkpoint import load_model, save_model
from msqnet.data import read_test_clips
from msqnet.hardware import describe as describe_hardware
from msqnet.models import create_model
from msqnet.precision import cast_for_inference, resolve_precision
from msqnet.inference.predict import model_scorer, predict

SHARED = Path(os.environ.get("MSQNET_SHARED", Path(__file__).resolve().parents[2] / "shared"))
VIDEOS = ["bigbuckbunny.mp4", "bikes.mp4", "carphone_pristine.mp4", "tree.avi", "vtest.avi"]
REAL = SHARED / "real" / "fight_surveillance"


def footage(kind: str, limit: int | None) -> list[Path]:
    """The videos of ``--footage``: the real surveillance clips (``all.csv`` order) or the five codec videos."""
    if kind == "codecs":
        return [SHARED / "videos" / name for name in VIDEOS][:limit]
    with open(REAL / "all.csv") as f:
        return [REAL / line.split(",")[0] for line in f.read().splitlines()[1:] if line][:limit]


def duration(path: Path) -> float:
    """Seconds of video in ``path`` (the container's duration)."""
    with av.open(str(path)) as container:
        return container.duration / av.time_base


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--footage", choices=("real", "codecs"), default="real",
                        help="the real surveillance clips (default) or the five codec videos")
    parser.add_argument("--limit", type=int, default=None, help="only the first N videos")
    parser.add_argument("--repeat", type=int, default=1, help="times each video is scored (default 1)")
    parser.add_argument("--workers", type=int, default=2, help="decoding processes of the overlapped run (default 2)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--model", default="msqnet-lite", help="model preset, random weights (default msqnet-lite)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        sources = footage(args.footage, args.limit)
        seconds = args.repeat * sum(duration(v) for v in sources)
        videos = []
        for i in range(args.repeat):
            for j, source in enumerate(sources):
                link = tmp / f"{i:03d}_{j:04d}_{source.name}"
                link.symlink_to(source)
                videos.append(str(link))
        torch.manual_seed(0)
        model = load_model(save_model(create_model(args.model, [f"action {i}" for i in range(20)]), tmp / "model"))
        precision = resolve_precision("auto", "cpu")
        model = cast_for_inference(model, precision)  # what `msqnet predict` runs (MSQNET_COMPILE as it reads it)
        cfg, view = model.cfg, model.test_view
        n = len(videos)
        print(f"{args.model} (random weights), {n} videos ({args.footage}, {seconds:.0f} s of footage), "
              f"T={cfg.num_frames}, {cfg.image_size} px, {view.num_views} view(s) per video, batch {args.batch_size}, "
              f"{os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}, {precision}, load average "
              f"{os.getloadavg()[0]:.1f}")
        print(f"machine: {describe_hardware()}")
        predict(model, videos[:2], num_workers=0)  # warm-up: first forward, decoder libraries

        t = time.perf_counter()
        clips = [read_test_clips(v, view, num_frames=cfg.num_frames, size=cfg.image_size) for v in videos]
        decode = time.perf_counter() - t
        score = model_scorer(model)
        t = time.perf_counter()
        for i in range(0, n, args.batch_size):
            score(torch.stack(clips[i : i + args.batch_size]))
        forward = time.perf_counter() - t
        runs = {}
        for workers in (0, args.workers):
            t = time.perf_counter()
            preds = predict(model, videos, batch_size=args.batch_size, num_workers=workers)
            runs[workers] = time.perf_counter() - t
            assert all(p.error is None for p in preds)

    print(f"\n{'what':44s} {'seconds':>8s} {'clips/s':>8s}")
    print(f"{'decode + resize + crop alone (main process)':44s} {decode:8.2f} {n / decode:8.2f}")
    print(f"{'model alone':44s} {forward:8.2f} {n / forward:8.2f}")
    print(f"{'predict, decoding in the main process':44s} {runs[0]:8.2f} {n / runs[0]:8.2f}")
    label = f"predict, {args.workers} decoding workers"
    print(f"{label:44s} {runs[args.workers]:8.2f} {n / runs[args.workers]:8.2f}")
    best = min(runs.values())
    hidden = (decode + forward - runs[args.workers]) / min(decode, forward)
    print(f"\nworkers vs main process: {runs[0] / runs[args.workers]:.2f}x; decode + model run one after the other "
          f"would take {decode + forward:.2f} s; the workers hid {100 * max(hidden, 0):.0f}% of the shorter stage "
          f"behind the longer")
    print(f"footage scored: {seconds / best:.1f}x real time, i.e. {seconds / best:.1f} hours of footage per hour of "
          f"this machine (the faster predict run; one clip per video; load average {os.getloadavg()[0]:.1f} at the "
          "end)")


if __name__ == "__main__":
    main()
