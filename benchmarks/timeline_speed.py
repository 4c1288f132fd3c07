"""Streaming timelines (``msqnet predict --window 1 --stride 1``) on generated long videos: time and peak memory.

Generates (once, into ``--workdir``) constant-rate H.264 videos of the given lengths (320x240, 25 fps),
saves a randomly initialised ``--model`` checkpoint, and scores every video's timeline in a fresh
process with ``msqnet.predict`` (``num_workers=0``: decode and model in one process, so its peak RSS,
read from ``wait4``, is exact). The baseline, run on the shorter videos only, is how ``predict``
built timelines before streaming: every window decoded on its own (a seek to the keyframe before
it, then decoding up to its frames) and all windows' clips held until they were scored.

    python benchmarks/timeline_speed.py                      # 1 and 30 minutes, baseline on 1 minute
    python benchmarks/timeline_speed.py --minutes 1 5 --baseline-minutes 1 5
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _child(mode: str, video: str, ckpt: str, window: float, stride: float) -> None:
    """Score one video's timeline (``stream``: msqnet's pipeline; ``per-window``: the old way) and print
    JSON: seconds in all, of which in the model, and windows."""
    import numpy as np
    import torch

    from msqnet.checkpoint import load_model
    from msqnet.data import probe, read_test_clips, timeline_windows
    from msqnet.inference.predict import iter_predictions, model_scorer

    model = load_model(ckpt)
    cfg, view = model.cfg, model.test_view
    score = model_scorer(model)
    model_seconds = 0.0

    def timed_score(clips: torch.Tensor) -> np.ndarray:
        nonlocal model_seconds
        t = time.perf_counter()
        out = score(clips)
        model_seconds += time.perf_counter() - t
        return out

    start = time.perf_counter()
    if mode == "stream":  # what predict(model, video, window=..., stride=...) runs, with a timed scorer
        ((_, pred),) = iter_predictions([(0, video)], timed_score, model.class_names, view=view,
                                        num_frames=cfg.num_frames, size=cfg.image_size, window=window, stride=stride)
        windows = len(pred.windows)
    else:
        spans = timeline_windows(probe(video), window, stride)
        clips = [read_test_clips(video, view, num_frames=cfg.num_frames, size=cfg.image_size, first=w.start_frame,
                                 last=w.end_frame) for w in spans]  # every window's (V, T, 3, S, S), all held
        windows = len(np.concatenate([timed_score(torch.stack(clips[i : i + 8])) for i in range(0, len(clips), 8)]))
    print(json.dumps({"seconds": time.perf_counter() - start, "model_seconds": model_seconds, "windows": windows}))


def _measure(mode: str, video: Path, ckpt: Path, window: float, stride: float) -> dict:
    """Run one child; its wall time, windows and peak RSS (MiB)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, __file__, "--child", mode, str(video), str(ckpt), str(window), str(stride)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait again
    if status != 0:
        raise SystemExit(f"{mode} on {video} failed (status {status})")
    result = json.loads(out.strip().splitlines()[-1])
    result["peak_mib"] = usage.ru_maxrss / 1024  # Linux: KiB
    return result


def _video(workdir: Path, minutes: float) -> Path:
    """The generated video of ``minutes`` (written once)."""
    sys.path.insert(0, str(REPO))
    from tests.videos import write_moving_video

    path = workdir / f"moving_{minutes:g}min.mp4"
    if not path.is_file():
        start = time.perf_counter()
        tmp = path.with_name(f".{path.name}.tmp.mp4")
        write_moving_video(tmp, minutes * 60)
        tmp.rename(path)
        print(f"generated {path} in {time.perf_counter() - start:.0f} s", flush=True)
    return path


def _checkpoint(workdir: Path, preset: str) -> Path:
    """A randomly initialised model of ``preset`` with 20 classes, saved once."""
    import torch

    from msqnet.checkpoint import save_model
    from msqnet.models import create_model

    path = workdir / f"{preset}-random"
    if not (path / "config.json").is_file():
        torch.manual_seed(0)
        save_model(create_model(preset, [f"action {i}" for i in range(20)]), path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[1, 30], help="video lengths (default 1 30)")
    parser.add_argument("--baseline-minutes", type=float, nargs="*", default=[1],
                        help="lengths that also run the per-window baseline (default 1)")
    parser.add_argument("--window", type=float, default=1.0)
    parser.add_argument("--stride", type=float, default=1.0)
    parser.add_argument("--model", default="msqnet-lite", help="model preset, random weights (default msqnet-lite)")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/msqnet-timeline-bench"))
    parser.add_argument("--child", nargs=5, metavar=("MODE", "VIDEO", "CKPT", "WINDOW", "STRIDE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, video, ckpt, window, stride = args.child
        _child(mode, video, ckpt, float(window), float(stride))
        return

    import torch

    args.workdir.mkdir(parents=True, exist_ok=True)
    ckpt = _checkpoint(args.workdir, args.model)
    print(f"{args.model} (random weights), window {args.window:g} s, stride {args.stride:g} s, "
          f"{os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}", flush=True)
    rows = []
    for minutes in args.minutes:
        video = _video(args.workdir, minutes)
        row = {"minutes": minutes, "stream": _measure("stream", video, ckpt, args.window, args.stride)}
        if minutes in args.baseline_minutes:
            row["per-window"] = _measure("per-window", video, ckpt, args.window, args.stride)
        rows.append(row)
        print(f"  {minutes:g} min done", flush=True)

    print(f"\n{'video':>8s} {'windows':>8s} {'mode':>12s} {'seconds':>9s} {'clips s':>8s} {'model s':>8s} "
          f"{'ms/window':>10s} {'peak RSS MiB':>13s}")
    for row in rows:
        for mode in ("per-window", "stream"):
            if mode in row:
                r = row[mode]
                clips = r["seconds"] - r["model_seconds"]
                print(f"{row['minutes']:>6g} m {r['windows']:>8d} {mode:>12s} {r['seconds']:>9.1f} {clips:>8.1f} "
                      f"{r['model_seconds']:>8.1f} {1000 * r['seconds'] / r['windows']:>10.1f} {r['peak_mib']:>13.0f}")
    print("(clips s: decoding, resizing and cropping the windows; model s: scoring them)")
    for row in rows:
        if "per-window" in row:
            old, new = row["per-window"], row["stream"]
            old_clips, new_clips = old["seconds"] - old["model_seconds"], new["seconds"] - new["model_seconds"]
            print(f"{row['minutes']:g} min: streaming vs per-window decoding: {old['seconds'] / new['seconds']:.2f}x "
                  f"faster in all, {old_clips / new_clips:.2f}x faster building clips, peak RSS {new['peak_mib']:.0f} "
                  f"vs {old['peak_mib']:.0f} MiB")
    if len(rows) > 1:
        short, long = rows[0]["stream"], rows[-1]["stream"]
        print(f"streaming, {rows[-1]['minutes']:g} min vs {rows[0]['minutes']:g} min: peak RSS ratio "
              f"{long['peak_mib'] / short['peak_mib']:.2f}x, time per window ratio "
              f"{(long['seconds'] / long['windows']) / (short['seconds'] / short['windows']):.2f}x")


if __name__ == "__main__":
    main()
