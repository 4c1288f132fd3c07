"""``benchmarks/model_speed.py --quick`` runs end to end and prints every row with its ratios and floor share."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_quick_model_speed_prints_baseline_msqnet_and_onnxruntime_rows():
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, str(REPO / "benchmarks" / "model_speed.py"), "--quick", "--models", "b16",
               "--variants", "baseline,eager,sdpa,auto,default,onnx"]
    out = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600, check=True).stdout
    rows = [line for line in out.splitlines() if line.startswith("b16-shaped")]
    variants = ["baseline (reference, HF)", "msqnet attention=eager", "msqnet attention=sdpa",
                "msqnet attention=auto", "msqnet default (predict, eager)", "onnxruntime"]
    assert all(any(v in r for r in rows) for v in variants), out
    assert len(rows) == 10  # baseline x2, three attentions x2 precisions, default, onnxruntime (compiled: its own test)
    for r in rows:
        seconds, floor, vs_fp32 = r.split()[-5], r.split()[-3], r.split()[-2]
        assert float(seconds) > 0 and floor.endswith("%") and vs_fp32.endswith("x")
    assert "GEMM throughput measured here: fp32" in out
    assert "machine: CPU ISA " in out  # AMX, AVX512-BF16 or none: the figures' machine kind
    assert "compiled path: MSQNET_COMPILE=" in out
