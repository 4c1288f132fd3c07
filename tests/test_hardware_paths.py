"""Every hardware branch, on a CPU of any kind, against the fp32 eager result.

Branches: precision (fp32; bf16 weights as ``msqnet predict`` stores them, with and without autocast;
bf16 autocast over fp32 weights as training and evaluation run; fp16 autocast, the CPU stand-in of
CUDA's fp16) x attention (``sdpa``, ``eager``, and ``auto`` under each CPU ISA forced with
``MSQNET_CPU_ISA``: ``amx`` takes the fused kernel in bf16, ``avx512_bf16`` three plain bf16 kernels).

Tolerances, on probabilities in [0, 1]: fp32 branches 1e-5 of the fp32 eager result; bf16 and fp16
branches 0.03 (bf16 keeps 8 mantissa bits; tiny random models); ONNX Runtime 1e-4 (tests/test_export.py).

Cost (well under a minute): the model-level matrix runs every family (frame transformer with the
CNN, with the pixel stream, with both; TimeSformer; VideoMAE; open-vocabulary and closed-set heads)
x every branch on one tiny clip, from the clip and (frame transformers) from cached frozen outputs
stored as fp16, as the cache stores them. The user paths through real video files -- ``predict`` from
Python and the CLI (clip and ``--window``), archive prediction (``--files`` into ``.jsonl``),
evaluation and the page's scoring function -- run on one family, the frame transformer with CNN and
pixel stream and an open-vocabulary head (the family of the bf16 crash), in bf16 under both ISA
branches where the path itself branches on precision (predict, evaluate), under AMX's otherwise.
ONNX Runtime, whose export is the slow step, runs on the export shared with tests/test_export.py.
CUDA-only branches skip here, naming the missing GPU; ``benchmarks/gpu_checks.py`` runs them.
"""
from __future__ import annotations

import copy
import csv
import json

import numpy as np
import pytest
import torch

import msqnet
from msqnet.checkpoint import save_model
from msqnet.cli import main
from msqnet.hardware import ISA_ENV
from msqnet.models import create_model
from msqnet.models.attention import set_attention
from msqnet.models.msqnet import FrozenFrames
from msqnet.engine.inference import score_clips_label_sets, to_probabilities
from msqnet.precision import autocast, cast_for_inference
from msqnet.inference.predict import predict

from .models.tiny import LITE_STATS, TINY_FRAMES, tiny_config

CLASSES = ["walking", "running", "eating"]
NEW_LABELS = ["walking", "riding a bicycle", "a tree in the wind"]
FP32_TOL, LOW_TOL = 1e-5, 0.03
VIDEO = "bikes.mp4"  # 10 s: a clip and four 4-s windows every 2 s


def _frames(**fields) -> dict:
    return {"video_encoder": {"kind": "frame_transformer", "config": {**TINY_FRAMES, **fields}, **LITE_STATS}}


FAMILIES = {
    "frames-cnn/open": ("frames", dict(head="text", **_frames(frame_motion=True))),  # the generic recipe's encoder
    "frames-pixels/closed": ("frames", _frames(pixel_patch=8, backbone="none")),
    "frames-both/open": ("frames", dict(head="text", **_frames(pixel_patch=8))),
    "frames-both/closed": ("frames", _frames(pixel_patch=8)),
    "timesformer/closed": ("timesformer", {}),
    "videomae/open": ("videomae", dict(head="text")),
}
# (weights, arithmetic, attention, forced ISA): the branches a CPU can take.
BRANCHES = [
    ("fp32", "fp32", "sdpa", None),
    ("bf16", "bf16", "eager", None),
    ("bf16", "bf16", "auto", "amx"),  # in bf16 the fused kernel: sdpa's own branch
    ("bf16", "bf16", "auto", "avx512_bf16"),  # three plain bf16 kernels
    ("bf16", "none", "auto", "avx512_bf16"),  # bf16 weights without autocast
    ("fp32", "bf16", "auto", "amx"),
    ("fp32", "bf16", "auto", "avx512_bf16"),
    ("fp32", "fp16", "sdpa", None),
]


def _branch_id(branch) -> str:
    weights, arithmetic, attention, isa = branch
    return f"{weights}-weights/{arithmetic}-autocast/{attention}" + (f"/isa-{isa}" if isa else "")


@pytest.fixture(scope="module")
def clip() -> torch.Tensor:
    return torch.randint(0, 256, (1, 4, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))


@pytest.fixture(scope="module")
def built(clip):
    """family -> (fp32 model, bf16-weights copy, label sets, fp32 eager probabilities per label set)."""
    out = {}
    for name, (family, fields) in FAMILIES.items():
        torch.manual_seed(0)
        model = create_model(tiny_config(family, **fields), CLASSES).eval()
        sets = [None, model.embed_labels(NEW_LABELS)] if model.cfg.head == "text" else [None]
        set_attention(model, "eager")
        reference = score_clips_label_sets(model, clip, sets)
        out[name] = (model, cast_for_inference(copy.deepcopy(model), "bf16"), sets, reference)
    return out


def _score(model, inputs, sets, arithmetic: str) -> list[torch.Tensor]:
    if arithmetic != "none":
        return score_clips_label_sets(model, inputs, sets, precision=arithmetic)
    with torch.inference_mode():  # bf16 weights, no autocast region
        encoded = model.encode(inputs if isinstance(inputs, torch.Tensor) else None,
                               frozen=inputs if isinstance(inputs, FrozenFrames) else None)
        return [to_probabilities(model.decode(encoded, label_embed=s).logits, model.multi_label) for s in sets]


@pytest.mark.parametrize("branch", BRANCHES, ids=_branch_id)
@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_scores_as_in_fp32_eager_on_every_branch(family, branch, built, clip, monkeypatch):
    weights, arithmetic, attention, isa = branch
    if isa:
        monkeypatch.setenv(ISA_ENV, isa)
    fp32_model, bf16_model, sets, reference = built[family]
    model = set_attention(bf16_model if weights == "bf16" else fp32_model, attention)
    tol = FP32_TOL if weights == arithmetic == "fp32" else LOW_TOL
    got = _score(model, clip, sets, arithmetic)
    for g, r in zip(got, reference, strict=True):
        assert g.dtype == torch.float32 and g.shape == r.shape
        assert (g - r).abs().max() <= tol
    if hasattr(model.video_encoder, "frozen_features") and isa == "avx512_bf16":
        # the cached path (one ISA: the frozen part has no attention): frozen outputs stored as fp16, read back
        with autocast("cpu", arithmetic if arithmetic != "none" else "fp32"):
            frozen = model.frozen_frames(clip)
        stored = FrozenFrames(*(None if t is None else t.to(torch.float16) for t in (frozen.features, frozen.visual)))
        for g, r in zip(_score(model, stored, sets, arithmetic), reference, strict=True):
            assert (g - r).abs().max() <= LOW_TOL


def test_the_frozen_part_gives_the_same_features_from_either_memory_layout(built, clip):
    """channels-last is not a branch: the frozen CNN always runs in it, whatever layout the clip has."""
    model = built["frames-both/closed"][0]
    frames = clip.float().div(255).flatten(0, 1).contiguous(memory_format=torch.channels_last).view_as(clip)
    assert torch.equal(model.frozen_frames(clip.float().div(255)).features, model.frozen_frames(frames).features)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (none on this machine); "
                    "benchmarks/gpu_checks.py runs the CUDA branches on a GPU machine")
@pytest.mark.parametrize("arithmetic", ["bf16", "fp16"])
def test_cuda_autocast_scores_as_fp32_eager_on_the_cpu(arithmetic, built, clip):
    fp32_model, _, sets, reference = built["frames-both/open"]
    model = set_attention(copy.deepcopy(fp32_model), "auto").cuda()
    got = score_clips_label_sets(model, clip, [None if s is None else s.cuda() for s in sets], device="cuda",
                                 precision=arithmetic)
    for g, r in zip(got, reference, strict=True):
        assert (g.cpu() - r).abs().max() <= LOW_TOL


# --- the user paths, on real files, for the family of the bf16 crash ----------------------------------


@pytest.fixture(scope="module")
def ckpt(built, tmp_path_factory):
    return save_model(built["frames-both/open"][0], tmp_path_factory.mktemp("hw") / "frames-both")


@pytest.fixture(scope="module")
def reference(ckpt, shared_videos):
    """fp32 eager predictions of the checkpoint on the video: (clip probabilities, window probabilities)."""
    model = set_attention(msqnet.load_model(ckpt), "eager")
    video = shared_videos / VIDEO
    whole = predict(model, video, NEW_LABELS, precision="fp32")
    timed = predict(model, video, NEW_LABELS, precision="fp32", window=4.0, stride=2.0)
    return whole.probabilities, np.stack([w.probabilities for w in timed.windows])


# (forced ISA, precision): auto is bf16 on AMX (fused attention); bf16 on AVX512-BF16 takes the
# three-kernel attention. (auto on ISA none is fp32: the default path the other test files run.)
USER_BRANCHES = [("amx", "auto"), ("avx512_bf16", "bf16")]


@pytest.mark.parametrize("isa, precision", USER_BRANCHES)
def test_python_predict_of_a_clip_and_windows(isa, precision, ckpt, reference, shared_videos, monkeypatch):
    monkeypatch.setenv(ISA_ENV, isa)
    model = msqnet.load_model(ckpt)
    whole = predict(model, shared_videos / VIDEO, NEW_LABELS, precision=precision)
    timed = predict(model, shared_videos / VIDEO, NEW_LABELS, precision=precision, window=4.0, stride=2.0)
    assert np.abs(whole.probabilities - reference[0]).max() <= LOW_TOL
    assert np.abs(np.stack([w.probabilities for w in timed.windows]) - reference[1]).max() <= LOW_TOL


@pytest.mark.parametrize("isa, precision", USER_BRANCHES)
def test_cli_predict_of_a_clip_and_windows(isa, precision, ckpt, reference, shared_videos, tmp_path, monkeypatch):
    monkeypatch.setenv(ISA_ENV, isa)
    common = [str(shared_videos / VIDEO), "--checkpoint", str(ckpt), "--labels", ", ".join(NEW_LABELS),
              "--precision", precision, "--format", "json", "--quiet"]
    assert main(["predict", *common, "--out", str(tmp_path / "clip.json")]) == 0
    assert main(["predict", *common, "--window", "4", "--stride", "2", "--out", str(tmp_path / "win.json")]) == 0
    whole = json.loads((tmp_path / "clip.json").read_text())[0]["probabilities"]
    windows = json.loads((tmp_path / "win.json").read_text())[0]["windows"]
    assert np.abs(np.array([whole[c] for c in NEW_LABELS]) - reference[0]).max() <= LOW_TOL
    got = np.array([[w["probabilities"][c] for c in NEW_LABELS] for w in windows])
    assert np.abs(got - reference[1]).max() <= LOW_TOL


@pytest.mark.parametrize("isa", ["amx"])
def test_archive_prediction_into_jsonl(isa, ckpt, reference, shared_videos, tmp_path, monkeypatch):
    monkeypatch.setenv(ISA_ENV, isa)
    files = tmp_path / "list.txt"
    files.write_text(f"{shared_videos / VIDEO}\n")
    out = tmp_path / "preds.jsonl"
    assert main(["predict", "--files", str(files), "--checkpoint", str(ckpt), "--labels", ", ".join(NEW_LABELS),
                 "--out", str(out), "--quiet"]) == 0
    [record] = [json.loads(line) for line in out.read_text().splitlines()]
    got = np.array([record["probabilities"][c] for c in NEW_LABELS])
    assert np.abs(got - reference[0]).max() <= LOW_TOL


@pytest.fixture(scope="module")
def split(shared_videos, tmp_path_factory):
    """Two real videos in the generic format, labelled with the checkpoint's classes."""
    from msqnet.data.config import DataConfig
    from msqnet.data.datasets import load_split

    folder = tmp_path_factory.mktemp("annotations")
    (folder / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    with open(folder / "test.csv", "w", newline="") as f:
        csv.writer(f).writerows([["path", "labels"], [VIDEO, "walking"], ["tree.avi", "running;eating"]])
    return load_split(DataConfig(format="generic", root=str(shared_videos), annotations=str(folder)), "test")


@pytest.mark.parametrize("isa", ["amx", "avx512_bf16"])
def test_evaluation_in_bf16_scores_as_fp32_eager(isa, ckpt, split, monkeypatch):
    from msqnet.data.config import SamplingConfig, TransformConfig
    from msqnet.engine.evaluate import evaluate_split

    monkeypatch.setenv(ISA_ENV, isa)
    kw = dict(sampling=SamplingConfig(num_frames=4), transform=TransformConfig(size=32), progress=False)
    model = msqnet.load_model(ckpt)
    got = evaluate_split(model, split, precision="bf16", **kw)
    eager = evaluate_split(set_attention(model, "eager"), split, precision="fp32", **kw)
    assert np.abs(got.scores - eager.scores).max() <= LOW_TOL


@pytest.mark.parametrize("isa", ["amx"])
def test_the_pages_scoring_function(isa, ckpt, reference, shared_videos, tmp_path, monkeypatch):
    from msqnet.app import analyse_video

    monkeypatch.setenv(ISA_ENV, isa)
    result = analyse_video(msqnet.load_model(ckpt), str(shared_videos / VIDEO), ", ".join(NEW_LABELS), window=4.0,
                           stride=2.0, top_k=3, workdir=tmp_path)
    expected = dict(zip(NEW_LABELS, reference[0]))
    assert set(result.labels) == set(NEW_LABELS) and len(result.table) == len(reference[1])
    assert max(abs(p - expected[label]) for label, p in result.labels.items()) <= LOW_TOL
