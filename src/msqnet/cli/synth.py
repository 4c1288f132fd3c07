"""``msqnet synth``: generate the procedurally rendered benchmark (videos, splits, datasheet)."""
from __future__ import annotations

import argparse

from ..config_loader import from_dict
from ..synth.generate import DEFAULT_UNSEEN_ACTORS, DEFAULT_UNSEEN_CLASSES, SynthConfig, generate_dataset


def _names(text: str) -> list[str]:
    """Comma-separated names; an empty string means none."""
    return [s.strip() for s in text.split(",") if s.strip()]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``synth`` sub-command."""
    p = subparsers.add_parser(
        "synth",
        help="generate the synthetic multi-label action benchmark",
        description="Render 1-3 articulated actors (biped, quadruped, bird, snake, spider, octopus) doing "
        "motion-defined actions, write H.264 videos (or PNG frames), the train / test_seen / "
        "test_unseen_actor splits, the zero-shot class split, trajectories and a datasheet into OUT_DIR.",
    )
    d = SynthConfig()
    p.add_argument("out_dir", metavar="OUT_DIR", help="output folder (must be empty, or use --overwrite)")
    p.add_argument("--clips", type=int, default=d.clips, help=f"train clips (default {d.clips})")
    p.add_argument("--test-clips", type=int, default=d.test_clips,
                   help=f"clips in each test split (default {d.test_clips})")
    p.add_argument("--seed", type=int, default=d.seed, help=f"dataset seed (default {d.seed})")
    p.add_argument("--size", type=int, default=d.size, help=f"frame size in pixels, even (default {d.size})")
    p.add_argument("--frames", type=int, default=d.frames, help=f"frames per clip (default {d.frames})")
    p.add_argument("--fps", type=int, default=d.fps, help=f"video frame rate (default {d.fps})")
    p.add_argument("--format", default=d.format, help="mp4 (H.264) or frames (PNG folders); default mp4")
    p.add_argument("--crf", type=int, default=d.crf, help="x264 quality, 0 = lossless (default 0)")
    p.add_argument("--workers", type=int, default=d.workers, help="parallel processes, 0 = one per core (default)")
    p.add_argument("--unseen-actors", default=",".join(DEFAULT_UNSEEN_ACTORS),
                   help="comma-separated morphologies held out for test_unseen_actor ('' for none; "
                   f"default {','.join(DEFAULT_UNSEEN_ACTORS)})")
    p.add_argument("--unseen-classes", default=",".join(DEFAULT_UNSEEN_CLASSES),
                   help="comma-separated classes held out of train for zero-shot ('' for none; "
                   f"default {','.join(DEFAULT_UNSEEN_CLASSES)})")
    p.add_argument("--moving-background", type=float, default=d.moving_background,
                   help=f"probability that a clip's clouds drift (default {d.moving_background})")
    p.add_argument("--supersample", type=int, default=d.supersample,
                   help=f"anti-aliasing factor (default {d.supersample})")
    p.add_argument("--preview", action="store_true", help="also write OUT_DIR/preview.png (one example per class)")
    p.add_argument("--overwrite", action="store_true", help="replace a dataset previously written to OUT_DIR")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Validate the arguments, generate the dataset and print a summary."""
    cfg = from_dict(SynthConfig, {
        "clips": args.clips,
        "test_clips": args.test_clips,
        "seed": args.seed,
        "size": args.size,
        "frames": args.frames,
        "fps": args.fps,
        "format": args.format,
        "crf": args.crf,
        "workers": args.workers,
        "unseen_actors": _names(args.unseen_actors),
        "unseen_classes": _names(args.unseen_classes),
        "moving_background": args.moving_background,
        "supersample": args.supersample,
        "preview": args.preview,
        "overwrite": args.overwrite,
    })
    summary = generate_dataset(args.out_dir, cfg, progress=not args.no_progress)
    print(summary.format())
    if cfg.preview:
        print(f"  preview: {summary.out_dir / 'preview.png'}")
    return 0
