"""Ablations on the synthetic benchmark: what each part of MSQNet's query design buys, and whether the
benchmark needs motion. Every run uses the demo's recipe (``msqnet/recipes/demo.yaml``) and data and
changes one thing; all are evaluated on ``test_seen`` and ``test_unseen_actor``:

| run | change |
|---|---|
| full | multi-modal queries (class text + video embedding), open-vocabulary head, seen classes only (the demo) |
| text_only | queries from the class text only: no video-specific embedding |
| learned | free per-class query vectors (no text), closed-set head, seen classes only |
| closed_set | the reference's group-wise linear head, trained on all classes (unseen ones never positive) |
| single_frame | the full model on one frame per clip (T=1): how far appearance alone gets |

"seen" = mAP over the classes trained on; "unseen" = mAP over the zero-shot classes, scored from their names
alone ("-" where a model cannot score a class name it never trained). Prints one table and writes
``OUT/ablations.json``. The frozen visual embedding of each training clip is computed once and shared by the
runs that can use it.

    msqnet synth data/synth                       # the demo's data, if not there yet
    python benchmarks/ablations.py --data data/synth --out runs/ablations
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

RUNS: dict[str, dict] = {
    "full": {"overrides": [], "zero_shot": True},
    "text_only": {"overrides": ["query=text", "visual_embedder.kind=none"], "zero_shot": True,
                  "train": ["cache_visual_embeddings=false"]},
    "learned": {"overrides": ["query=learned", "head=group_linear"], "zero_shot": True},
    "closed_set": {"overrides": ["head=group_linear", "trainable_label_embeddings=true"], "zero_shot": False},
    "single_frame": {"overrides": ["num_frames=1"], "zero_shot": True, "num_frames": 1},
}


def run_one(name: str, spec: dict, data: Path, out: Path, extra: list[str], shared_cache: Path | None) -> dict:
    """Train one variant and evaluate it on both test splits."""
    from msqnet.checkpoint import load_model
    from msqnet.config import load_config
    from msqnet.data.datasets import load_split
    from msqnet.demo import DEMO_SPLITS, _recipe_path
    from msqnet.engine.config import TrainConfig
    from msqnet.engine.trainer import train
    from msqnet.engine.zero_shot import evaluate_zero_shot
    from msqnet.zero_shot import load_zero_shot_split

    recipe = load_config(TrainConfig, _recipe_path())
    model_overrides = [*recipe.model_overrides, *spec["overrides"]]
    zs_file = data / "splits" / "zero_shot.json"
    overrides = [f"data.annotations={data}", f"output_dir={out / name}", f"model_overrides={json.dumps(model_overrides)}",
                 *([f"zero_shot={zs_file}"] if spec["zero_shot"] else []),
                 *([f"sampling.num_frames={spec['num_frames']}"] if "num_frames" in spec else []),
                 *spec.get("train", []), *extra]
    cfg = load_config(TrainConfig, _recipe_path(), overrides)
    run_dir = Path(cfg.output_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    cache = run_dir / "visual_cache.safetensors"
    if shared_cache is not None and shared_cache.is_file() and not cache.exists():
        shutil.copy(shared_cache, cache)  # reused only if its fingerprint matches this run's settings
    start = time.perf_counter()
    result = train(cfg, resume="auto", progress=False)
    train_s = time.perf_counter() - start
    model = load_model(result.best_model or result.last_state)
    row = {"run": name, "train_s": round(train_s, 1)}
    for split_name in DEMO_SPLITS:
        split = load_split(cfg.data, split_name)
        zs = load_zero_shot_split(zs_file, split.class_names)
        if model.cfg.head == "group_linear" and list(model.class_names) != list(split.class_names):
            # A closed-set model of the seen classes: score them, the unseen ones cannot be.
            from msqnet.engine.evaluate import evaluate_split
            from msqnet.zero_shot import restrict_split

            r = evaluate_split(model, restrict_split(split, zs.seen), sampling=cfg.sampling, transform=cfg.transform,
                               metrics=["map"], progress=False)
            row[f"{split_name} seen"], row[f"{split_name} unseen"] = r.metrics["map"], None
            continue
        r = evaluate_zero_shot(model, split, zs, sampling=cfg.sampling, transform=cfg.transform, progress=False)
        row[f"{split_name} seen"], row[f"{split_name} unseen"] = r.map_seen, r.map_unseen
        row[f"{split_name} chance seen"], row[f"{split_name} chance unseen"] = r.chance_seen, r.chance_unseen
    return row


def main() -> None:
    """Run the selected variants in order and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("data/synth"), help="synthetic benchmark folder")
    parser.add_argument("--out", type=Path, default=Path("runs/ablations"), help="runs and results folder")
    parser.add_argument("--runs", default=",".join(RUNS), help=f"comma-separated subset of {list(RUNS)}")
    parser.add_argument("overrides", nargs="*", help="training config overrides for every run, e.g. epochs=3")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    from msqnet.engine.report import print_table
    from msqnet.utils import atomic_write_text

    rows = []
    shared = args.out / "full" / "visual_cache.safetensors"
    for name in [n.strip() for n in args.runs.split(",") if n.strip()]:
        if name not in RUNS:
            raise SystemExit(f"unknown run {name!r}; expected some of {list(RUNS)}")
        rows.append(run_one(name, RUNS[name], args.data, args.out, args.overrides, shared))
        atomic_write_text(args.out / "ablations.json", json.dumps(rows, indent=2) + "\n")
        print(print_table(rows, ["run", "test_seen seen", "test_seen unseen", "test_unseen_actor seen",
                                 "test_unseen_actor unseen", "train_s"]), flush=True)
    first = rows[0]
    print("chance: test_seen seen {:.3f} / unseen {:.3f}; test_unseen_actor seen {:.3f} / unseen {:.3f}".format(
        *(first.get(k) or float("nan") for k in ("test_seen chance seen", "test_seen chance unseen",
                                                  "test_unseen_actor chance seen", "test_unseen_actor chance unseen"))))


if __name__ == "__main__":
    main()
