"""Real footage: does fine-tuning the CNN's last stages beat reading its frozen features?

msqnet-lite keeps its ImageNet EfficientNet-Lite0 frozen. This trains its last stages (6 and 7: five blocks, from
the ImageNet weights) with a linear readout on each fold of ``../shared/real/fight_surveillance/`` and scores the
other fold, both ways, for several learning rates of the tuned blocks (0: frozen, only the readout trains):

    clip: 16 frames (the middles of 16 equal segments) at 256 x 320 px, and their mirror images
    -> frozen stem and stages 1-5, once per clip, cached: (2 views, 16, 112, 16, 20)
    -> training: a random view, one frame of each pair (8 frames), a random 14 x 14 window (a 224-px crop)
       test: the unmirrored view, the 8 odd frames, the centre window
    -> stages 6-7 (trained at ``lr``) -> mean over space (8, 320)
    -> [mean over frames ; mean |frame-to-frame change|] (640) -> LayerNorm -> dropout 0.3 -> Linear -> 2 classes

AdamW (readout 1e-3, weight decay 0.05), cosine schedule, label smoothing 0.1, a fixed number of epochs (nothing is
chosen on the fold that is scored). In the same run, the baseline: ``real_footage.py``'s logistic-regression probe
on the same test-view features of the frozen CNN (mean + diff, C by cross-validation grouped by recording inside
the training fold).

    python benchmarks/real_footage_finetune.py                         # lr 0, 3e-5, 1e-4; seed 1
    python benchmarks/real_footage_finetune.py --lrs 0,1e-4 --seeds 1,2,3 --epochs 30
"""
from __future__ import annotations

import argparse
import copy
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).parent))
from real_footage import DATA, DIRECTIONS, POSITIVE, class_names, fit_probe, probe_inputs, top1_and_ap  # noqa: E402
from real_footage_probes import fold_frames  # noqa: E402

FRAME_HW = (256, 320)  # every clip resized to one size (aspect not kept), so that clips batch
WINDOW = 14  # stage-5 cells per side of a 224-px crop (stride 16)
FROZEN_BLOCKS = 11  # the stem and stages 1-5 of Lite0 (blocks 0-10); stages 6-7 are blocks 11-15


def fold_maps(name: str, trunk: nn.Module, normalize: nn.Module, out: Path) -> dict:
    """Stage-5 maps (N, 2, 16, 112, 16, 20) in fp16 of every clip of fold ``name`` and of its mirror image, class
    ids (N,) and recordings (N,); cached in ``out``."""
    path = out / f"{name}-stage5.pt"
    if path.exists():
        return torch.load(path)
    maps, y, groups = [], [], []
    for frames, label, group in fold_frames(name, FRAME_HW[0]):
        frames = F.interpolate(frames, size=FRAME_HW, mode="bilinear", antialias=True, align_corners=False)
        with torch.no_grad():
            m = trunk(normalize(torch.cat([frames, frames.flip(-1)])))  # (32, 112, 16, 20)
        maps.append(m.half().unflatten(0, (2, -1)))  # (2, 16, 112, 16, 20)
        y.append(label)
        groups.append(group)
    found = {"maps": torch.stack(maps), "y": torch.tensor(y), "groups": np.array(groups)}
    out.mkdir(parents=True, exist_ok=True)
    torch.save(found, path.with_suffix(".tmp"))
    path.with_suffix(".tmp").replace(path)
    return found


def test_view(maps: torch.Tensor) -> torch.Tensor:
    """The test view (N, 8, C, 14, 14) of cached maps (N, 2, 16, C, h, w): unmirrored, odd frames, centre window."""
    h, w = maps.shape[-2:]
    top, left = (h - WINDOW) // 2, (w - WINDOW) // 2
    return maps[:, 0, 1::2, :, top:top + WINDOW, left:left + WINDOW]


def training_view(maps: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """A random training view (N, 8, C, 14, 14) of cached maps (N, 2, 16, C, h, w): a random mirror, one frame of
    each consecutive pair, a random window."""
    h, w = maps.shape[-2:]
    views = []
    for clip in maps:
        mirror = int(torch.randint(2, (1,), generator=g))
        frames = torch.arange(8) * 2 + torch.randint(2, (8,), generator=g)
        top = int(torch.randint(h - WINDOW + 1, (1,), generator=g))
        left = int(torch.randint(w - WINDOW + 1, (1,), generator=g))
        views.append(clip[mirror, frames, :, top:top + WINDOW, left:left + WINDOW])
    return torch.stack(views)


class TunedHead(nn.Module):
    """Lite0's stages 6-7 (a copy, from the ImageNet weights) and a linear readout of mean + frame-change features."""

    def __init__(self, blocks: nn.Module, channels: int, num_classes: int, dropout: float):
        super().__init__()
        self.blocks = copy.deepcopy(blocks)
        self.norm = nn.LayerNorm(2 * channels)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(2 * channels, num_classes)

    def pooled(self, maps: torch.Tensor) -> torch.Tensor:
        """Stage-5 maps (B, T, 112, 14, 14) -> stage-7 features pooled over space (B, T, 320)."""
        b, t = maps.shape[:2]
        return self.blocks(maps.flatten(0, 1).float()).mean((-2, -1)).view(b, t, -1)

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        """Stage-5 maps (B, T, 112, 14, 14) -> class logits (B, num_classes)."""
        f = self.pooled(maps)  # (B, T, 320)
        x = torch.cat([f.mean(1), (f[:, 1:] - f[:, :-1]).abs().mean(1)], dim=-1)  # (B, 640)
        return self.fc(self.dropout(self.norm(x)))


def train_and_score(head: TunedHead, train: dict, test: dict, *, lr: float, epochs: int, seed: int,
                    positive: int, batch_size: int = 16) -> dict:
    """Train ``head`` (its blocks at ``lr``, frozen at 0) on ``train`` for ``epochs``; top-1 and AP on ``test``."""
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    head.blocks.requires_grad_(lr > 0)
    readout = [p for n, p in head.named_parameters() if not n.startswith("blocks.")]
    groups = [{"params": readout, "lr": 1e-3}] + ([{"params": head.blocks.parameters(), "lr": lr}] if lr > 0 else [])
    opt = torch.optim.AdamW(groups, weight_decay=0.05)
    n = len(train["y"])
    steps = epochs * math.ceil(n / batch_size)
    schedule = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / steps)))
    start = time.perf_counter()
    for _ in range(epochs):
        head.train()
        for idx in torch.randperm(n, generator=g).split(batch_size):
            loss = F.cross_entropy(head(training_view(train["maps"][idx], g)), train["y"][idx], label_smoothing=0.1)
            opt.zero_grad()
            loss.backward()
            opt.step()
            schedule.step()
    head.eval()
    with torch.no_grad():
        scores = torch.cat([head(test_view(test["maps"][i:i + 32])) for i in range(0, len(test["y"]), 32)])
    top1, ap = top1_and_ap(scores.softmax(-1).numpy(), test["y"].numpy(), positive)
    return {"top1": top1, "ap": ap, "train_s": time.perf_counter() - start}


def frozen_probe(head: TunedHead, train: dict, test: dict, positive: int) -> dict:
    """The baseline: ``real_footage.py``'s probe (mean + diff) on the frozen stage-7 features of the test view."""
    with torch.no_grad():
        feats = {k: head.pooled(test_view(d["maps"])) for k, d in (("train", train), ("test", test))}
    return fit_probe(probe_inputs(feats["train"], "mean+diff"), train["y"].numpy(), train["groups"],
                     probe_inputs(feats["test"], "mean+diff"), test["y"].numpy(), positive)


def main() -> None:
    """Cache both folds' stage-5 maps once, then per learning rate and seed train both directions; print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lrs", default="0,3e-5,1e-4", help="learning rates of stages 6-7 (0: frozen)")
    parser.add_argument("--seeds", default="1")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--out", type=Path, default=Path("runs/real_footage_finetune"), help="the maps' cache")
    args = parser.parse_args()
    if not DATA.is_dir():
        sys.exit(f"{DATA}: the real-footage clips are not there (they ship in ../shared beside the checkout)")
    from msqnet.models.efficientnet_lite import (EFFICIENTNET_LITE_MEAN, EFFICIENTNET_LITE_STD, efficientnet_lite0,
                                                 fuse_batchnorm)
    from msqnet.models.normalize import Normalize

    net = fuse_batchnorm(efficientnet_lite0(pretrained=True)).eval()
    trunk = nn.Sequential(net.stem, net.blocks[:FROZEN_BLOCKS])
    folds = {name: fold_maps(name, trunk, Normalize(EFFICIENTNET_LITE_MEAN, EFFICIENTNET_LITE_STD), args.out)
             for name in ("fold1", "fold2")}
    classes = class_names()
    positive = classes.index(POSITIVE)

    def make_head() -> TunedHead:
        """A fresh copy of the ImageNet stages 6-7 and an untrained readout."""
        return TunedHead(net.blocks[FROZEN_BLOCKS:], net.stage_channels[-1], len(classes), dropout=0.3)

    probes = [frozen_probe(make_head(), folds[a], folds[b], positive) for a, b in DIRECTIONS]
    rows = [("probe on the frozen CNN (mean + diff)", [p["top1"] for p in probes], [p["ap"] for p in probes])]
    print(f"baseline: {rows[0][0]}: top-1 {rows[0][1]}", flush=True)
    for lr in (float(v) for v in args.lrs.split(",")):
        top1, ap = [], []
        for seed in (int(s) for s in args.seeds.split(",")):
            for a, b in DIRECTIONS:
                r = train_and_score(make_head(), folds[a], folds[b], lr=lr, epochs=args.epochs, seed=seed,
                                    positive=positive)
                print(f"lr {lr:g}, seed {seed}, {a} -> {b}: top-1 {r['top1']:.3f}, AP {r['ap']:.3f}, "
                      f"{r['train_s']:.0f} s", flush=True)
                top1.append(r["top1"])
                ap.append(r["ap"])
        rows.append((f"stages 6-7 at lr {lr:g}" if lr else "frozen CNN, trained readout", top1, ap))
    print(f"\n{'model':38s} | {'f1->f2':>6s} | {'f2->f1':>6s} | {'mean':>5s} | {'spread':>6s} | AP fighting (mean)")
    for name, top1, ap in rows:
        # top1 runs alternate fold1 -> fold2, fold2 -> fold1 over the seeds
        print(f"{name:38s} | {np.mean(top1[0::2]):6.3f} | {np.mean(top1[1::2]):6.3f} | {np.mean(top1):5.3f} | "
              f"{np.std(top1):6.3f} | {np.mean(ap):.3f}")


if __name__ == "__main__":
    main()
