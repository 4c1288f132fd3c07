"""``msqnet demo``: render the synthetic benchmark, train msqnet-lite, evaluate, print the table."""
from __future__ import annotations

import argparse

from .arguments import positive_int


def _run(args: argparse.Namespace) -> int:
    from ..engine.demo import run_demo

    result = run_demo(args.data_dir, args.out, clips=args.clips, test_clips=args.test_clips, size=args.size,
                      overrides=args.overrides, fresh=args.fresh, progress=not args.no_progress)
    total = sum(result.seconds.values())
    print()
    print("msqnet demo: msqnet-lite (open-vocabulary head) on the synthetic actor-agnostic benchmark")
    print("  seen = classes trained on; unseen = classes scored from their names alone (zero-shot);")
    print("  test_unseen_actor = body plans never seen in training. mAP is macro mAP over the whole split.")
    print(result.table())
    print()
    print("  unseen classes, one by one: AP from their names alone, beside the AP of random scores")
    print(result.unseen_table())
    print()
    parts = ", ".join(f"{k} {v:.0f} s" for k, v in result.seconds.items())
    print(f"time: {parts}; total {total / 60:.1f} min")
    print(f"reports (metrics, training curves with the validation mAP per epoch): {result.report_dir}; "
          f"run: {result.run_dir}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``demo``."""
    p = sub.add_parser("demo", help="the main job: synthetic data -> train msqnet-lite -> evaluate -> report",
                       description=__doc__)
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="training config overrides, e.g. epochs=3")
    p.add_argument("--data-dir", default="data/synth", help="synthetic benchmark folder (rendered if missing)")
    p.add_argument("--out", default="runs/demo", help="run and report folder (default runs/demo)")
    p.add_argument("--clips", type=positive_int, default=2400, help="train clips to render (default 2400)")
    p.add_argument("--test-clips", type=positive_int, default=300, help="clips per test split to render (default 300)")
    p.add_argument("--size", type=positive_int, default=64, help="frame size of the rendered clips (default 64)")
    p.add_argument("--fresh", action="store_true", help="train from scratch even if a run is in --out")
    p.add_argument("--no-progress", action="store_true", help="log lines instead of progress bars")
    p.set_defaults(func=_run)
