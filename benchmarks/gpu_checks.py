"""The CUDA-only branches, checked on a GPU machine in a few minutes: what the CPU test suite cannot run.

    python benchmarks/gpu_checks.py               # on a machine with a CUDA GPU (under 10 minutes on one GPU)
    python benchmarks/gpu_checks.py --cpu-dry-run # the same steps on the CPU (gloo, CPU autocast): checks the script

Steps, each printed as ``PASS`` / ``FAIL`` / ``SKIP`` with its figures; the exit status is 1 if any failed:

1. the machine: torch, CUDA device(s), bf16 support, and what ``auto`` picks (precision, attention);
2. the suite's CUDA tests (``pytest -m "" -k cuda tests/test_hardware_paths.py``: bf16 and fp16
   autocast on CUDA against fp32 eager on the CPU);
3. fused attention: every SDPA backend PyTorch has on this GPU (flash, memory-efficient, cuDNN,
   math) in bf16 and fp16 at TimeSformer-B's shapes, against fp32 math (tolerance 2e-2);
4. training on CUDA in fp16 (gradient scaler) and bf16: a tiny model one epoch on a generated
   dataset, finite loss, a checkpoint written;
5. ``msqnet predict`` on CUDA with ``--precision auto`` (bf16 weights where supported) against the
   CPU fp32 scores of the same checkpoint (tolerance 0.03);
6. NCCL: with 2+ GPUs a 2-process DDP training run and evaluation (``tests/engine/ddp_worker.py``
   under torchrun, which must equal a single-process evaluation); with one GPU a 1-process NCCL
   group through msqnet's gathering helpers and one DDP step (NCCL refuses two ranks on one GPU).
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tests.models.tiny: the suite's tiny model configs
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

RESULTS: list[tuple[str, str, str]] = []


def step(name: str):
    """Run the decorated check now, recording PASS / FAIL (its exception) / SKIP (a returned reason)."""
    def run(fn):
        start = time.perf_counter()
        try:
            note = fn() or ""
            status = "SKIP" if note.startswith("skip:") else "PASS"
        except Exception as e:  # a check that fails must not stop the others
            traceback.print_exc()
            status, note = "FAIL", f"{type(e).__name__}: {e}"
        line = f"{status}  {name} ({time.perf_counter() - start:.0f} s) {note}"
        RESULTS.append((status, name, note))
        print(line, flush=True)
        return fn
    return run


def tiny_dataset(folder: Path) -> Path:
    """A tiny generated benchmark (real mp4 files), as the suite's engine tests use."""
    from msqnet.synth import SynthConfig, generate_dataset

    out = folder / "synth"
    generate_dataset(out, SynthConfig(clips=16, test_clips=8, size=32, frames=8, workers=1), progress=False)
    return out


def train_config(synth: Path, out: Path, *, device: str, precision: str, family: str = "frames") -> Path:
    """A one-epoch training config of a tiny model on ``synth``, written as YAML."""
    from msqnet.config_loader import from_dict, to_dict, write_config_file
    from msqnet.engine.config import TrainConfig
    from tests.models.tiny import tiny_config

    model_file = out.parent / f"{out.name}-model.yaml"
    write_config_file(tiny_config(family, head="text"), model_file)
    cfg = from_dict(TrainConfig, {
        "model": str(model_file), "data": {"format": "generic", "annotations": str(synth)},
        "train_split": "train", "eval_splits": ["test_seen"], "sampling": {"num_frames": 4},
        "transform": {"size": 32}, "optim": {"lr": 1e-3}, "epochs": 1, "batch_size": 4, "num_workers": 0,
        "output_dir": str(out), "tensorboard": False, "device": device, "precision": precision})
    path = out.parent / f"{out.name}.yaml"
    write_config_file(to_dict(cfg), path)
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cpu-dry-run", action="store_true", help="run every step on the CPU (checks the script itself)")
    args = p.parse_args(argv)
    cuda = torch.cuda.is_available() and not args.cpu_dry_run
    if not cuda and not args.cpu_dry_run:
        print("no CUDA GPU on this machine: nothing to check (use --cpu-dry-run to exercise the script)")
        return 2
    device = "cuda" if cuda else "cpu"
    work = Path(tempfile.mkdtemp(prefix="msqnet-gpu-checks-"))
    from msqnet.hardware import describe

    @step("the machine")
    def _machine():
        gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if cuda else []
        bf16 = torch.cuda.is_bf16_supported() if cuda else "n/a"
        return f"torch {torch.__version__}, GPUs {gpus or 'none (dry run)'}, CUDA bf16 {bf16}; {describe()}"

    @step("the suite's CUDA tests")
    def _suite():
        if not cuda:
            return "skip: they skip without a GPU"
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-k", "cuda", "tests/test_hardware_paths.py"],
                              cwd=REPO, capture_output=True, text=True, timeout=300)
        print(proc.stdout[-2000:])
        if proc.returncode != 0 or " skipped" in proc.stdout.splitlines()[-1]:
            raise RuntimeError("pytest failed or skipped its CUDA tests (see above)")
        return proc.stdout.strip().splitlines()[-1]

    @step("fused attention backends (TimeSformer-B shapes)")
    def _attention():
        from torch.nn.attention import SDPBackend, sdpa_kernel

        g = torch.Generator(device=device).manual_seed(0)
        shape = (8, 12, 197, 64)  # (B*T, H, N, d): spatial attention of TimeSformer-B at 224 px
        q, k, v = (torch.randn(shape, device=device, generator=g) for _ in range(3))
        with sdpa_kernel(SDPBackend.MATH):
            reference = F.scaled_dot_product_attention(q, k, v)
        notes = []
        for backend in (SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.CUDNN_ATTENTION,
                        SDPBackend.MATH):
            for dtype in (torch.bfloat16, torch.float16):
                try:
                    with sdpa_kernel(backend):
                        out = F.scaled_dot_product_attention(q.to(dtype), k.to(dtype), v.to(dtype))
                except RuntimeError as e:  # this backend has no kernel for this GPU / dtype
                    notes.append(f"{backend.name}/{str(dtype)[6:]}: unavailable ({str(e).splitlines()[0][:60]})")
                    continue
                err = float((out.float() - reference).abs().max())
                if err > 2e-2:
                    raise AssertionError(f"{backend.name} {dtype}: max error {err:.3g} against fp32 math")
                notes.append(f"{backend.name}/{str(dtype)[6:]}: max err {err:.1e}")
        return "; ".join(notes)

    synth = tiny_dataset(work)
    checkpoints: dict[str, Path] = {}
    for precision in ("fp16", "bf16"):
        @step(f"training on {device} in {precision}")
        def _train(precision=precision):
            from msqnet.engine.config import load_train_config
            from msqnet.engine.trainer import train

            result = train(load_train_config(str(train_config(synth, work / f"run-{precision}", device=device,
                                                              precision=precision))), progress=False)
            checkpoints[precision] = result.last_state
            return f"checkpoint {result.last_state.name}, {result.metric} {result.best_value}"

    @step(f"msqnet predict on {device}, --precision auto, against CPU fp32")
    def _predict():
        from msqnet.cli import main as msqnet

        ckpt = checkpoints.get("bf16") or checkpoints["fp16"]
        video = sorted(synth.rglob("*.mp4"))[0]
        scores = {}
        for dev, precision in ((device, "auto"), ("cpu", "fp32")):
            out = work / f"predict-{dev}-{precision}.json"
            rc = msqnet(["predict", str(video), "--checkpoint", str(ckpt), "--device", dev, "--precision", precision,
                         "--format", "json", "--out", str(out), "--quiet"])
            assert rc == 0, f"msqnet predict --device {dev} exited {rc}"
            scores[dev, precision] = np.array(list(json.loads(out.read_text())[0]["probabilities"].values()))
        err = float(np.abs(scores[device, "auto"] - scores["cpu", "fp32"]).max())
        assert err <= 0.03, f"max difference {err:.3g} > 0.03"
        return f"max difference {err:.1e}"

    @step("NCCL" if cuda else "gloo (dry run)")
    def _ddp():
        if cuda and torch.cuda.device_count() >= 2:
            cfg = train_config(synth, work / "run-ddp", device="cuda", precision="bf16")
            out = work / "ddp.npz"
            cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr",
                   "127.0.0.1", "--master_port", "29531", str(REPO / "tests" / "engine" / "ddp_worker.py"), str(cfg),
                   "test_seen", str(out)]
            subprocess.run(cmd, check=True, timeout=300, cwd=REPO)
            saved = np.load(out)
            return f"2-process DDP run: evaluation of {len(saved['scores'])} clips gathered"
        return _single_process_group("nccl" if cuda else "gloo", device)

    print()
    for status, name, note in RESULTS:
        print(f"{status:4s}  {name}")
    return 1 if any(s == "FAIL" for s, _, _ in RESULTS) else 0


def _single_process_group(backend: str, device: str) -> str:
    """A 1-process ``backend`` group: msqnet's gather/broadcast/reduce helpers and one DDP step."""
    import torch.distributed as dist

    from msqnet.engine.distributed import all_gather_objects, all_reduce_sum, broadcast_object

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT="29532")
    dist.init_process_group(backend, rank=0, world_size=1)
    try:
        t = torch.ones(2, device=device)
        dist.all_reduce(t)  # the backend's own collective (msqnet's helpers skip it for one process)
        assert t.tolist() == [1.0, 1.0]
        assert all_gather_objects({"rank": 0}) == [{"rank": 0}]
        assert broadcast_object("x") == "x" and all_reduce_sum(2.0) == 2.0
        model = torch.nn.parallel.DistributedDataParallel(copy.deepcopy(torch.nn.Linear(4, 2)).to(device))
        model(torch.randn(3, 4, device=device)).sum().backward()
        assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    finally:
        dist.destroy_process_group()
    return f"1-process {backend} group (2-GPU DDP needs 2 GPUs): gather, broadcast, reduce, one DDP step"


if __name__ == "__main__":
    sys.exit(main())
