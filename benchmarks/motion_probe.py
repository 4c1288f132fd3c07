"""Does the synthetic benchmark need motion? The same small CNN trained for the same wall-clock budget on
all frames of a clip (stacked as channels: it sees motion) and on single frames (it cannot), then scored on
``test_seen`` and ``test_unseen_actor`` (seen classes, macro mAP; the single-frame model averages its
scores over every frame of a test clip, its best use of the clip).

    msqnet synth data/synth64 --size 64          # the demo's rendering, if not there yet
    python benchmarks/motion_probe.py data/synth64 --seconds 200

Prints one line per epoch and a final table with the chance level.
"""
from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from msqnet.metrics import mean_average_precision
from msqnet.synth import read_video
from msqnet.metrics import chance_map


def load(root: Path, split: str, classes: list[str]) -> tuple[torch.Tensor, np.ndarray]:
    """All clips of a split as uint8 (N, T, 3, H, W) and multi-hot targets (N, C)."""
    with open(root / f"{split}.csv", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    x = np.stack([read_video(root / r["path"]) for r in rows])  # (N, T, H, W, 3)
    y = np.zeros((len(rows), len(classes)), np.int64)
    for i, r in enumerate(rows):
        for name in filter(None, r["labels"].split(";")):
            y[i, classes.index(name)] = 1
    return torch.from_numpy(x).permute(0, 1, 4, 2, 3).contiguous(), y


def conv_block(cin: int, cout: int) -> nn.Sequential:
    """Stride-2 conv + conv, with BatchNorm and ReLU."""
    return nn.Sequential(nn.Conv2d(cin, cout, 3, 2, 1), nn.BatchNorm2d(cout), nn.ReLU(),
                         nn.Conv2d(cout, cout, 3, 1, 1), nn.BatchNorm2d(cout), nn.ReLU())


class ProbeCNN(nn.Module):
    """Four conv blocks, global pooling, one linear layer: (B, C_in, H, W) -> logits (B, classes)."""

    def __init__(self, in_channels: int, num_classes: int):
        super().__init__()
        self.features = nn.Sequential(conv_block(in_channels, 48), conv_block(48, 64), conv_block(64, 96),
                                      conv_block(96, 128), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(128, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


@torch.no_grad()
def score(net: ProbeCNN, x: torch.Tensor, video: bool) -> np.ndarray:
    """Scores (N, C): stacked frames, or the mean over every single frame of a clip."""
    net.eval()
    out = []
    for i in range(0, len(x), 128):
        clip = x[i : i + 128].float() / 255  # (B, T, 3, H, W)
        if video:
            out.append(net(clip.flatten(1, 2)))  # (B, T*3, H, W)
        else:
            out.append(torch.stack([net(clip[:, t]) for t in range(clip.shape[1])]).mean(0))
    net.train()
    return torch.cat(out).numpy()


def run(mode: str, data, seen: list[int], seconds: float, seed: int) -> dict[str, float]:
    """Train one probe for ``seconds`` and return its seen-class mAP per test split."""
    torch.manual_seed(seed)
    (xtr, ytr), tests = data["train"], {k: v for k, v in data.items() if k != "train"}
    video = mode == "video"
    T = xtr.shape[1]
    net = ProbeCNN(3 * T if video else 3, ytr.shape[1])
    opt = torch.optim.AdamW(net.parameters(), 2e-3, weight_decay=1e-4)
    loss_fn = nn.BCEWithLogitsLoss()
    targets = torch.from_numpy(ytr).float()
    start, step = time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        for b in torch.randperm(len(xtr)).split(32):
            clip = xtr[b].float() / 255
            x = clip.flatten(1, 2) if video else clip[torch.arange(len(b)), torch.randint(0, T, (len(b),))]
            if torch.rand(1) < 0.5:
                x = x.flip(-1)  # the motion classes are left/right symmetric
            loss = loss_fn(net(x), targets[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            if time.perf_counter() - start > seconds:
                break
        x_seen, y = tests["test_seen"]
        s = score(net, x_seen, video)
        print(f"  {mode:12s} {time.perf_counter() - start:5.0f} s, step {step}: test_seen mAP "
              f"{mean_average_precision(s[:, seen], y[:, seen]).map:.3f}", flush=True)
    return {name: mean_average_precision(score(net, x, video)[:, seen], y[:, seen]).map
            for name, (x, y) in tests.items()}


def main() -> None:
    """Train both probes and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", type=Path, help="synthetic benchmark folder (msqnet synth)")
    parser.add_argument("--seconds", type=float, default=200.0, help="training wall-clock budget per probe")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    classes = [c["name"] for c in json.loads((args.data / "classes.json").read_text())]
    seen = [classes.index(c) for c in json.loads((args.data / "splits" / "zero_shot.json").read_text())["seen"]]
    data = {split: load(args.data, split, classes) for split in ("train", "test_seen", "test_unseen_actor")}
    results = {mode: run(mode, data, seen, args.seconds, args.seed) for mode in ("video", "single_frame")}
    print(f"\n{'probe':14s} | test_seen mAP | test_unseen_actor mAP   (seen classes, {args.seconds:.0f} s each)")
    for mode, r in results.items():
        print(f"{mode:14s} | {r['test_seen']:13.3f} | {r['test_unseen_actor']:.3f}")
    chance = {k: chance_map(y[:, seen] != 0) for k, (_, y) in data.items() if k != "train"}
    print(f"{'chance':14s} | {chance['test_seen']:13.3f} | {chance['test_unseen_actor']:.3f}")


if __name__ == "__main__":
    main()
