"""Ablations on the synthetic benchmark: what each part of the model buys, measured on the demo's data
and budget. Every run is the demo's recipe (``msqnet/presets/recipes/demo.yaml``) with one change, trained with
two seeds, and scored on ``test_seen`` and ``test_unseen_actor`` (macro mAP of the seen classes):

| run | change |
|---|---|
| full | the demo: queries fuse each class's text with the clip's own video embedding |
| text_only | queries from the class text only (the video embedding still starts every class feature) |
| no_video_embedding | no video-level embedding anywhere: text-only queries and no video residual |
| learned | free per-class query vectors (no text) and the closed-set group-wise linear head |
| reference_readout | the paper's readout arithmetic on the same encoder: post-norm ``nn.Transformer`` with 2 encoder layers, inputs at their raw scale, no video residual |
| single_frame | one frame per clip (T=1): how far appearance alone gets |
| imagenet_cnn | the video encoder of the ``msqnet-lite`` preset: frozen ImageNet EfficientNet-Lite0 features (and their frame differences) instead of the pixel CNN |

Zero-shot: the full model is trained on the seen classes of the benchmark's own split (the demo's:
"getting up", "moving away from the camera" and "following" held out) and of ``--splits`` seeded random
splits that hold out 3 of the 12 trainable classes each; unseen classes are scored from their names
alone. Prints the tables (mean and range over seeds) and writes ``OUT/ablations.json``. The frozen
outputs of the training and test clips are computed once (``OUT/cache``) and shared by every run.

    msqnet synth data/synth --size 64             # the demo's data, if not there yet
    python benchmarks/ablations.py --data data/synth --out runs/ablations
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

RUNS: dict[str, list[str]] = {
    "full": [],
    "text_only": ["query=text"],
    "no_video_embedding": ["query=text", "video_residual=false"],
    "learned": ["query=learned", "head=group_linear"],
    "reference_readout": ["input_norm=false", "video_residual=false", "decoder.norm_first=false",
                          "decoder.num_encoder_layers=2"],
    "single_frame": ["num_frames=1"],
    "imagenet_cnn": ["video_encoder.config.backbone=efficientnet_lite0", "video_encoder.config.pixel_patch=null"],
}
SPLITS = ("test_seen", "test_unseen_actor")


def random_zero_shot_splits(data: Path, out: Path, count: int) -> list[Path]:
    """``count`` seeded splits holding out 3 of the classes that have training clips; their files in ``out``."""
    from msqnet.data.config import DataConfig
    from msqnet.data.datasets import load_split
    from msqnet.data.class_splits import load_zero_shot_split

    train = load_split(DataConfig(format="generic", annotations=str(data)), "train")
    fixed = load_zero_shot_split(data / "splits" / "zero_shot.json", train.class_names)
    trainable = [train.class_names[i] for i in fixed.seen]  # the others never appear in a training clip
    files = []
    for k in range(1, count + 1):
        unseen = sorted(np.random.default_rng(k).choice(trainable, size=3, replace=False).tolist())
        path = out / "splits" / f"random_{k}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"name": f"random_{k}", "seen": [c for c in trainable if c not in unseen],
                                    "unseen": unseen}, indent=2) + "\n", encoding="utf-8")
        files.append(path)
    return files


def run_one(name: str, changes: list[str], seed: int, zero_shot: Path, data: Path, out: Path,
            extra: list[str]) -> dict:
    """Train one variant with one seed and score both test splits (from the shared cache of test views)."""
    from msqnet.data.datasets import load_split
    from msqnet.engine.demo import DEMO_RECIPE
    from msqnet.engine.config import load_train_config
    from msqnet.engine.frozen_cache import cached_clip_dataset
    from msqnet.engine.trainer import train
    from msqnet.engine.zero_shot import evaluate_zero_shot
    from msqnet.data.class_splits import load_zero_shot_split

    recipe = load_train_config(DEMO_RECIPE)
    model_overrides = [*recipe.model_overrides, *changes]
    frames = next((int(c.split("=")[1]) for c in changes if c.startswith("num_frames=")), None)
    tag = f"{name}-{zero_shot.stem}-seed{seed}"
    overrides = [f"data.annotations={data}", f"output_dir={out / 'runs' / tag}", f"cache_dir={out / 'cache'}",
                 f"model_overrides={json.dumps(model_overrides)}", f"zero_shot={zero_shot}", f"seed={seed}",
                 *([f"sampling.num_frames={frames}"] if frames else []), *extra]
    cfg = load_train_config(DEMO_RECIPE, overrides)
    start = time.perf_counter()
    result = train(cfg, resume="auto", progress=False)
    row = {"run": name, "split": zero_shot.stem, "seed": seed, "train_s": round(time.perf_counter() - start, 1)}
    from msqnet.checkpoint import load_model

    model = load_model(result.best_model or result.last_state)
    for split_name in SPLITS:
        split = load_split(cfg.data, split_name)
        zs = load_zero_shot_split(zero_shot, split.class_names)
        if model.cfg.head == "group_linear":  # closed set: only the seen classes it was trained on
            from msqnet.data.class_splits import ZeroShotSplit, restrict_split

            split = restrict_split(split, zs.seen)
            zs = ZeroShotSplit(zs.name, tuple(range(len(zs.seen))), ())
        # The test views' cache depends on the clips, not their labels: both label sets share it.
        dataset = cached_clip_dataset(model, split, out / "cache", sampling=cfg.sampling, transform=cfg.transform,
                                      train=False, batch_size=64, progress=False)
        r = evaluate_zero_shot(model, split, zs, sampling=cfg.sampling, transform=cfg.transform, batch_size=64,
                               progress=False, dataset=dataset)
        row[f"{split_name} seen"], row[f"{split_name} chance seen"] = r.map_seen, r.chance_seen
        if zs.unseen:
            row[f"{split_name} unseen"], row[f"{split_name} chance unseen"] = r.map_unseen, r.chance_unseen
            row[f"{split_name} unseen per class"] = {n: r.per_class_ap[n] for n in zs.names(split.class_names)[1]}
    return row


def _summary(rows: list[dict], key: str) -> str:
    """``mean (min-max)`` of ``key`` over rows that have it."""
    values = [r[key] for r in rows if r.get(key) is not None]
    if not values:
        return "-"
    return f"{np.mean(values):.3f} ({min(values):.3f}-{max(values):.3f})" if len(values) > 1 else f"{values[0]:.3f}"


def main() -> None:
    """Run every variant with every seed, then the zero-shot splits, and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("data/synth"), help="synthetic benchmark folder")
    parser.add_argument("--out", type=Path, default=Path("runs/ablations"), help="runs and results folder")
    parser.add_argument("--runs", default=",".join(RUNS), help=f"comma-separated subset of {list(RUNS)}")
    parser.add_argument("--seeds", default="1,2", help="training seeds of every run (default 1,2)")
    parser.add_argument("--splits", type=int, default=3, help="random zero-shot splits for the full model (default 3)")
    parser.add_argument("--split-seeds", default=None,
                        help="training seeds of the random zero-shot split runs (default: --seeds)")
    parser.add_argument("overrides", nargs="*", help="training config overrides for every run, e.g. epochs=3")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    from msqnet.engine.report import print_table
    from msqnet.utils import atomic_write_text

    names = [n.strip() for n in args.runs.split(",") if n.strip()]
    unknown = [n for n in names if n not in RUNS]
    if unknown:
        raise SystemExit(f"unknown run(s) {unknown}; expected some of {list(RUNS)}")
    seeds = [int(s) for s in args.seeds.split(",")]
    fixed = args.data / "splits" / "zero_shot.json"
    jobs = [(name, fixed, seed) for name in names for seed in seeds]
    if "full" in names:
        split_seeds = [int(s) for s in args.split_seeds.split(",")] if args.split_seeds else seeds
        jobs += [("full", path, seed) for path in random_zero_shot_splits(args.data, args.out, args.splits)
                 for seed in split_seeds]
    rows: list[dict] = []
    for name, split_file, seed in jobs:
        rows.append(run_one(name, RUNS[name], seed, split_file, args.data, args.out, args.overrides))
        atomic_write_text(args.out / "ablations.json", json.dumps(rows, indent=2) + "\n")

    table = []
    for name in names:
        mine = [r for r in rows if r["run"] == name and r["split"] == "zero_shot"]
        table.append({"run": name, **{f"{s} {k}": _summary(mine, f"{s} {k}") for s in SPLITS for k in ("seen", "unseen")},
                      "train s": _summary(mine, "train_s")})
    print(f"\nseen = mAP of the trained classes; unseen = zero-shot mAP of the held-out classes; "
          f"mean (min-max) over seeds {seeds}")
    print(print_table(table, list(table[0])))
    first = next(r for r in rows if r["split"] == "zero_shot")
    print("chance: " + ", ".join(f"{k} {first[k]:.3f}" for k in first if "chance" in k))
    zs_rows = []
    for split_file in sorted({r["split"] for r in rows if r["run"] == "full"}):
        mine = [r for r in rows if r["run"] == "full" and r["split"] == split_file]
        unseen = list(mine[0].get("test_seen unseen per class", {}))
        zs_rows.append({"zero-shot split": split_file, "unseen classes": ", ".join(unseen),
                        "test_seen unseen": _summary(mine, "test_seen unseen"),
                        "chance": _summary(mine, "test_seen chance unseen"),
                        "test_unseen_actor unseen": _summary(mine, "test_unseen_actor unseen"),
                        "chance ": _summary(mine, "test_unseen_actor chance unseen")})
    if zs_rows:
        print("\nzero-shot, full model, per class split (mean over seeds)")
        print(print_table(zs_rows, list(zs_rows[0])))


if __name__ == "__main__":
    main()
