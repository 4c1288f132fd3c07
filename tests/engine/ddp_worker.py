"""Run by ``torchrun`` from test_distributed.py: a 2-process training run, then a 2-process evaluation.

Usage: ddp_worker.py TRAIN_CONFIG SPLIT OUT_NPZ. Rank 0 saves the gathered evaluation (scores,
record indices, metrics) of the trained model on SPLIT to OUT_NPZ.
"""
from __future__ import annotations

import json
import sys

import numpy as np

from msqnet.checkpoint import load_model
from msqnet.data.datasets import load_split
from msqnet.engine.config import load_train_config
from msqnet.engine.distributed import init_distributed, shutdown_distributed
from msqnet.engine.evaluate import evaluate_split
from msqnet.engine.trainer import train


def main(config: str, split_name: str, out: str) -> None:
    cfg = load_train_config(config)
    info = init_distributed(cfg.device)
    try:
        result = train(cfg, progress=False)
        model = load_model(result.last_state)
        split = load_split(cfg.data, split_name)
        evaluated = evaluate_split(model, split, sampling=cfg.sampling, transform=cfg.transform, batch_size=1,
                                   progress=False)
        if info.is_main:
            np.savez(out, scores=evaluated.scores, indices=evaluated.indices,
                     metrics=json.dumps(evaluated.metrics), world_size=info.world_size)
    finally:
        shutdown_distributed()


if __name__ == "__main__":
    main(*sys.argv[1:4])
