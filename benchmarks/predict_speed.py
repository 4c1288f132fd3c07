"""End-to-end ``msqnet predict`` on the shared real videos: clips/s, and decoding overlapped with the model.

Scores the five shared videos (h264 up to 1280x720, cinepak, msmpeg4v3) ``--repeat`` times each
(distinct symlinked paths, so nothing is cached between them) with a randomly initialised ``--model``
checkpoint and its default test view (one clip per video). Prints, in one run: decoding alone,
the model alone, ``predict`` with decoding in the main process (``--num-workers 0``) and with
``--workers`` DataLoader processes decoding while the model runs, as clips/s and the ratio.

    python benchmarks/predict_speed.py [--repeat 8] [--workers 2] [--model msqnet-lite]
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch

from msqnet.checkpoint import load_model, save_model
from msqnet.data import read_test_clips
from msqnet.models import create_model
from msqnet.inference.predict import model_scorer, predict

SHARED = Path(os.environ.get("MSQNET_SHARED", Path(__file__).resolve().parents[2] / "shared"))
VIDEOS = ["bigbuckbunny.mp4", "bikes.mp4", "carphone_pristine.mp4", "tree.avi", "vtest.avi"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=8, help="times each shared video is scored (default 8)")
    parser.add_argument("--workers", type=int, default=2, help="decoding processes of the overlapped run (default 2)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--model", default="msqnet-lite", help="model preset, random weights (default msqnet-lite)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        videos = []
        for i in range(args.repeat):
            for name in VIDEOS:
                link = tmp / f"{i:03d}_{name}"
                link.symlink_to(SHARED / "videos" / name)
                videos.append(str(link))
        torch.manual_seed(0)
        model = load_model(save_model(create_model(args.model, [f"action {i}" for i in range(20)]), tmp / "model"))
        cfg, view = model.cfg, model.test_view
        n = len(videos)
        print(f"{args.model} (random weights), {n} videos, T={cfg.num_frames}, {cfg.image_size} px, "
              f"{view.num_views} view(s) per video, batch {args.batch_size}, {os.cpu_count()} CPUs, "
              f"torch threads {torch.get_num_threads()}")
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
    print(f"\nworkers vs main process: {runs[0] / runs[args.workers]:.2f}x; decode + model run one after the other "
          f"would take {decode + forward:.2f} s")


if __name__ == "__main__":
    main()
