"""Does the decoder's memory still carry the clip? The across-clip spread of the readout's inputs, stage
by stage, for trained checkpoints (or freshly built models), on real clips of the synthetic benchmark.

Spread = mean squared distance of a clip's vector from the mean over clips, as a fraction of the mean
squared norm, per temporal position: 1 when clips share nothing, 0 when every clip gives the same
memory. The reference adds unit-amplitude sinusoids to the projected tokens; when those tokens are
small (``|tokens| / |position code|`` below 1) the sum is mostly the same position code for every clip.

    python benchmarks/readout_diagnosis.py runs/ablations/runs/full-zero_shot-seed1 \\
        runs/ablations-parts/runs/reference_readout-zero_shot-seed1 --data data/synth
    python benchmarks/readout_diagnosis.py --preset msqnet-lite --data data/synth   # at initialisation
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def spread(x: torch.Tensor) -> float:
    """Across-clip spread of ``x`` (B, T, D), relative to its mean squared norm."""
    x = x.float()
    return float(((x - x.mean(0, keepdim=True)) ** 2).sum(-1).mean() / (x ** 2).sum(-1).mean())


@torch.no_grad()
def diagnose(model, video: torch.Tensor) -> dict[str, float]:
    """The spread after each readout stage for a batch of clips (B, T, 3, H, W)."""
    model.eval()
    tokens = model.video_encoder(video)
    pooled = model.pool(tokens)  # (B, T', Hv)
    projected = model.memory_norm(model.token_proj(model.token_norm(pooled)))  # (B, T', D)
    code = model.pos_encoding.pe[:, : projected.shape[1]]
    memory = model.decoder.transformer.encoder(projected + code)  # (B, T', D); the identity without encoder layers
    return {"pooled tokens": spread(pooled), "projected": spread(projected), "+ position code": spread(projected + code),
            "memory": spread(memory),
            "|tokens| / |code|": float(projected.norm(dim=-1).mean() / code.norm(dim=-1).mean())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoints", nargs="*", type=Path, help="run or model folders")
    parser.add_argument("--preset", action="append", default=[], help="also a freshly built model of this preset")
    parser.add_argument("--data", type=Path, default=Path("data/synth"), help="synthetic benchmark folder")
    parser.add_argument("--clips", type=int, default=64, help="test_seen clips to read (default 64)")
    args = parser.parse_args()
    from msqnet.checkpoint import load_model
    from msqnet.data.config import DataConfig
    from msqnet.data.dataset import ClipDataset
    from msqnet.data.datasets import load_split
    from msqnet.engine.inference import view_configs
    from msqnet.engine.report import print_table
    from msqnet.models import create_model

    split = load_split(DataConfig(format="generic", annotations=str(args.data)), "test_seen")
    models = [(str(p), load_model(p)) for p in args.checkpoints]
    for preset in args.preset:
        models.append((f"{preset} (initialised)", create_model(preset, split.class_names, ["image_size=64"])))
    rows = []
    for name, model in models:
        sampling, transform = view_configs(model)
        data = ClipDataset(split.records[: args.clips], split.num_classes, sampling=sampling, transform=transform,
                           train=False)
        video = torch.stack([data[i]["video"] for i in range(len(data))])
        rows.append({"model": name, **{k: f"{v:.3f}" for k, v in diagnose(model, video).items()}})
    print(print_table(rows, list(rows[0])))


if __name__ == "__main__":
    main()
