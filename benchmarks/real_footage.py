"""Real footage: msqnet's default recipe against the simple baselines on real CCTV clips, both fold directions.

``../shared/real/fight_surveillance/`` holds 192 two-second clips (fighting / not fighting) cut from 47
recordings, in two folds that share no recording. Every model trains on one fold and is scored on the
other, then the reverse, with every seed; nothing is tuned on the fold it is scored on:

| model | what |
|---|---|
| msqnet | ``msqnet train generic`` with its defaults (msqnet-lite, the recipe's ``val`` split picks ``best``) |
| text_only, learned | the query ablations of ``benchmarks/ablations.py``: text-only queries; free per-class queries + closed-set head |
| T=1 | msqnet on one frame per clip |
| probe mean, probe mean+diff | logistic regression on the same frozen features (the recipe's frozen CNN, test view, pooled over space): the mean over frames, and the mean beside the mean absolute frame-to-frame difference; C chosen by 5-fold cross-validation grouped by recording *inside the training fold* |
| stacked-frame CNN | the small CNN of ``benchmarks/motion_probe.py`` on all frames stacked as channels, a fixed number of epochs |
| majority | the training fold's most frequent class |

Prints, per model, top-1 and the AP of ``fighting`` per fold direction and seed, then the mean and spread
(standard deviation over the seeds and both directions), and writes ``OUT/real_footage.json``.

    python benchmarks/real_footage.py                        # 3 seeds x 2 directions, every model
    python benchmarks/real_footage.py --models msqnet,probe --seeds 1
    python benchmarks/real_footage.py --models msqnet -- epochs=10      # recipe overrides after --
    python benchmarks/real_footage.py --model-overrides image_size=224,video_encoder.config.stage=7 -- transform.size=224
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "real" / "fight_surveillance"
DIRECTIONS = (("fold1", "fold2"), ("fold2", "fold1"))
POSITIVE = "fighting"
# The msqnet variants: recipe model overrides (the query ablations of benchmarks/ablations.py, and T=1).
VARIANTS: dict[str, list[str]] = {
    "msqnet": [],
    "text_only": ["query=text"],
    "learned": ["query=learned", "head=group_linear"],
    "T=1": ["num_frames=1"],
}
BASELINES = ("probe", "cnn", "majority")


def class_names() -> list[str]:
    """The set's class names, in class-id order (``classes.txt``)."""
    return (DATA / "classes.txt").read_text(encoding="utf-8").splitlines()


def top1_and_ap(scores: np.ndarray, labels: np.ndarray, positive: int) -> tuple[float, float]:
    """Top-1 of (N, C) scores against class ids (N,), and the AP of class ``positive``."""
    from sklearn.metrics import average_precision_score

    return float((scores.argmax(1) == labels).mean()), float(average_precision_score(labels == positive,
                                                                                      scores[:, positive]))


def run_msqnet(name: str, train: str, test: str, seed: int, out: Path, extra: list[str],
               model_extra: list[str] = ()) -> dict:
    """Train the generic recipe (+ ``model_extra`` and the variant's model overrides, + ``extra`` recipe overrides)
    on ``train``; score its chosen model on ``test``."""
    from msqnet.checkpoint import load_model
    from msqnet.data.datasets import load_split
    from msqnet.engine.config import load_train_config
    from msqnet.engine.evaluate import evaluate_split
    from msqnet.engine.frozen_cache import cached_clip_dataset
    from msqnet.engine.trainer import train as run_training

    changes = [*model_extra, *VARIANTS[name]]
    frames = next((c.split("=")[1] for c in changes if c.startswith("num_frames=")), None)
    recipe = load_train_config("generic")
    overrides = [f"data.annotations={DATA}", f"train_split={train}", "eval_splits=[]", f"seed={seed}",
                 f"output_dir={out / 'runs' / f'{name}-{train}-seed{seed}'}", f"cache_dir={out / 'cache'}",
                 *([f"model_overrides={json.dumps([*recipe.model_overrides, *changes])}"] if changes else []),
                 *([f"sampling.num_frames={frames}"] if frames else []), *extra]
    cfg = load_train_config("generic", overrides)
    start = time.perf_counter()
    result = run_training(cfg, resume="auto", progress=False)
    model = load_model(result.best_model or result.last_state)
    split = load_split(cfg.data, test).as_label_kind(model.multi_label)
    # The test fold's frozen outputs are computed once and shared by every run with the same frozen part.
    dataset = cached_clip_dataset(model, split, out / "cache", sampling=cfg.sampling, transform=cfg.transform,
                                  train=False, multi_label=model.multi_label, batch_size=32, progress=False)
    r = evaluate_split(model, split, sampling=cfg.sampling, transform=cfg.transform, batch_size=32,
                       progress=False, dataset=dataset)
    labels = r.targets.argmax(1)
    top1, ap = top1_and_ap(r.scores, labels, split.class_names.index(POSITIVE))
    return {"top1": top1, "ap": ap, "train_s": round(time.perf_counter() - start, 1),
            "chosen_by": result.selection_split or "last epoch", "best_epoch": result.best_epoch}


def frozen_features(train: str, test: str, out: Path, extra: list[str],
                    model_extra: list[str]) -> dict[str, tuple[torch.Tensor, np.ndarray, np.ndarray]]:
    """Per split: the recipe model's frozen per-frame features of the test view, pooled over space (N, T, C),
    class ids (N,) and recording names (N,)."""
    from msqnet.data.datasets import load_split
    from msqnet.engine.config import load_train_config
    from msqnet.engine.frozen_cache import cached_frozen_frames
    from msqnet.models import create_model

    recipe = load_train_config("generic")
    cfg = load_train_config("generic", [f"data.annotations={DATA}", *extra, *(
        [f"model_overrides={json.dumps([*recipe.model_overrides, *model_extra])}"] if model_extra else [])])
    feats = {}
    for name in (train, test):
        split = load_split(cfg.data, name)
        model = create_model(cfg.model, split.class_names, multi_label=False)
        cache = cached_frozen_frames(model, split, out / "cache", sampling=cfg.sampling, transform=cfg.transform,
                                     train=False, batch_size=16, progress=False)
        maps = cache.features[:, :, : model.video_encoder.channels].float()  # (N, T, C, h, w): the CNN's maps
        feats[name] = (maps.mean((-1, -2)), np.array([r.labels[0] for r in split.records]),
                       np.array([r.meta.get("source", r.uid) for r in split.records]))
    return feats


def probe_inputs(f: torch.Tensor, kind: str) -> np.ndarray:
    """Probe inputs from per-frame features (N, T, C): the mean over frames, and for ``mean+diff`` beside it
    the mean absolute difference of consecutive frames (N, 2C)."""
    mean = f.mean(1)
    if kind == "mean":
        return mean.numpy()
    return torch.cat([mean, (f[:, 1:] - f[:, :-1]).abs().mean(1)], dim=1).numpy()


def fit_probe(xtr: np.ndarray, ytr: np.ndarray, groups: np.ndarray, xte: np.ndarray, yte: np.ndarray,
              positive: int, seed: int = 0) -> dict:
    """Standardised logistic regression, C chosen by 5-fold cross-validation grouped by recording on the training
    fold only: top-1 and the AP of ``positive`` on the test fold, and the C chosen."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV, GroupKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000, random_state=seed))
    search = GridSearchCV(pipe, {"logisticregression__C": np.logspace(-3, 1, 9)}, cv=GroupKFold(5),
                          scoring="accuracy")
    search.fit(xtr, ytr, groups=groups)
    top1, ap = top1_and_ap(search.predict_proba(xte), yte, positive)
    return {"top1": top1, "ap": ap, "C": float(search.best_params_["logisticregression__C"])}


def run_probe(kind: str, feats: dict, train: str, test: str, seed: int, positive: int) -> dict:
    """The probe of ``kind`` (``mean`` or ``mean+diff``) trained on fold ``train``, scored on ``test``."""
    (ftr, ytr, gtr), (fte, yte, _) = feats[train], feats[test]
    return fit_probe(probe_inputs(ftr, kind), ytr, gtr, probe_inputs(fte, kind), yte, positive, seed)


def run_cnn(train: str, test: str, seed: int, positive: int, epochs: int, size: int) -> dict:
    """The stacked-frame CNN of ``benchmarks/motion_probe.py``: T frames as 3T channels, trained from scratch
    with cross-entropy and mirroring for ``epochs`` epochs."""
    sys.path.insert(0, str(Path(__file__).parent))
    from motion_probe import ProbeCNN
    from torch import nn

    from msqnet.data.config import DataConfig, SamplingConfig, TransformConfig
    from msqnet.data.dataset import ClipDataset
    from msqnet.data.datasets import load_split

    data = DataConfig(format="generic", annotations=str(DATA))
    clips = {}
    for name in (train, test):
        split = load_split(data, name)
        ds = ClipDataset(split.records, split.num_classes, sampling=SamplingConfig(num_frames=8),
                         transform=TransformConfig(size=size), train=False, multi_label=False)
        clips[name] = (torch.stack([ds[i]["video"] for i in range(len(ds))]),  # (N, T, 3, S, S) uint8
                       torch.tensor([r.labels[0] for r in split.records]))
    torch.manual_seed(seed)
    (xtr, ytr), (xte, yte) = clips[train], clips[test]
    net = ProbeCNN(3 * xtr.shape[1], 2)
    opt = torch.optim.AdamW(net.parameters(), 2e-3, weight_decay=1e-4)
    for _ in range(epochs):
        for b in torch.randperm(len(xtr)).split(16):
            x = xtr[b].float().flatten(1, 2) / 255  # (B, 3T, S, S)
            if torch.rand(1) < 0.5:
                x = x.flip(-1)
            loss = nn.functional.cross_entropy(net(x), ytr[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
    net.eval()
    with torch.no_grad():
        scores = torch.cat([net(x.float().flatten(1, 2) / 255).softmax(-1) for x in xte.split(32)]).numpy()
    return dict(zip(("top1", "ap"), top1_and_ap(scores, yte.numpy(), positive)))


def run_majority(train: str, test: str, positive: int) -> dict:
    """Every test clip scored as the training fold's most frequent class."""
    from msqnet.data.config import DataConfig
    from msqnet.data.datasets import load_split

    data = DataConfig(format="generic", annotations=str(DATA))
    ytr, yte = ([r.labels[0] for r in load_split(data, name).records] for name in (train, test))
    scores = np.eye(2)[np.full(len(yte), np.bincount(ytr, minlength=2).argmax())]
    return dict(zip(("top1", "ap"), top1_and_ap(scores, np.array(yte), positive)))


def summarize(rows: list[dict]) -> str:
    """The table: per model, top-1 and AP(fighting) per direction (mean over seeds), then mean and spread."""
    models = list(dict.fromkeys(r["model"] for r in rows))
    head = (f"{'model':18s} | {'top1 f1->f2':>11s} | {'top1 f2->f1':>11s} | {'top1 mean':>9s} | {'spread':>6s} | "
            f"{'AP fight':>8s} | {'spread':>6s} | runs")
    lines = [head, "-" * len(head)]
    for m in models:
        mine = [r for r in rows if r["model"] == m]
        per_dir = [np.mean([r["top1"] for r in mine if r["train"] == a]) for a, _ in DIRECTIONS]
        top1, ap = np.array([r["top1"] for r in mine]), np.array([r["ap"] for r in mine])
        lines.append(f"{m:18s} | {per_dir[0]:11.3f} | {per_dir[1]:11.3f} | {top1.mean():9.3f} | {top1.std():6.3f} | "
                     f"{ap.mean():8.3f} | {ap.std():6.3f} | {len(mine)}")
    return "\n".join(lines)


def main() -> None:
    """Run every model on both directions and seeds; print and save the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs/real_footage"), help="runs, caches and results")
    parser.add_argument("--models", default=",".join([*VARIANTS, *BASELINES]),
                        help=f"comma-separated subset of {[*VARIANTS, *BASELINES]}")
    parser.add_argument("--seeds", default="1,2,3", help="training seeds (default 1,2,3)")
    parser.add_argument("--cnn-epochs", type=int, default=30, help="epochs of the stacked-frame CNN")
    parser.add_argument("--cnn-size", type=int, default=112, help="frame size of the stacked-frame CNN")
    parser.add_argument("--model-overrides", default="",
                        help="comma-separated model overrides for every msqnet run and the probes' features, "
                             "e.g. image_size=224,video_encoder.config.stage=7")
    parser.add_argument("overrides", nargs="*", help="recipe overrides for every msqnet run and the probes' "
                                                     "features, e.g. epochs=10 transform.size=224")
    args = parser.parse_args()
    if not DATA.is_dir():
        parser.error(f"{DATA}: the real-footage clips are not there (they ship in ../shared beside the checkout)")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    models = args.models.split(",")
    unknown = sorted(set(models) - {*VARIANTS, *BASELINES})
    if unknown:
        parser.error(f"--models: unknown {unknown}; expected names from {[*VARIANTS, *BASELINES]}")
    seeds = [int(s) for s in args.seeds.split(",")]
    args.out.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    positive = class_names().index(POSITIVE)
    model_extra = [m for m in args.model_overrides.split(",") if m]
    feats = frozen_features(*DIRECTIONS[0], args.out, args.overrides, model_extra) if "probe" in models else None
    for seed in seeds:
        for train, test in DIRECTIONS:
            for m in models:
                start = time.perf_counter()
                if m in VARIANTS:
                    found = [run_msqnet(m, train, test, seed, args.out, args.overrides, model_extra)]
                    names = [m]
                elif m == "probe":
                    found = [run_probe(k, feats, train, test, seed, positive) for k in ("mean", "mean+diff")]
                    names = ["probe mean", "probe mean+diff"]
                elif m == "cnn":
                    found = [run_cnn(train, test, seed, positive, args.cnn_epochs, args.cnn_size)]
                    names = ["stacked-frame CNN"]
                else:
                    found, names = [run_majority(train, test, positive)], ["majority"]
                for name, r in zip(names, found):
                    rows.append({"model": name, "train": train, "test": test, "seed": seed, **r})
                    print(f"seed {seed} {train}->{test} {name:18s} top1 {r['top1']:.3f}  AP(fighting) {r['ap']:.3f}"
                          f"  [{time.perf_counter() - start:.0f} s]", flush=True)
    (args.out / "real_footage.json").write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    print(f"\n{summarize(rows)}\n\nspread: standard deviation over {len(seeds)} seed(s) x 2 directions; "
          f"results in {args.out / 'real_footage.json'}")


if __name__ == "__main__":
    main()
