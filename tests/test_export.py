"""``msqnet export --format onnx`` and ``msqnet predict --backend onnxruntime``: real clips, the same scores."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import msqnet
from msqnet.checkpoint import save_model
from msqnet.cli import main
from msqnet.inference.export import OnnxRuntimeModel
from msqnet.models import create_model
from msqnet.inference.predict import predict

from .models.tiny import tiny_config

CLASSES = ["walking", "running", "eating"]
VIDEOS = ["bigbuckbunny.mp4", "bikes.mp4", "carphone_pristine.mp4", "tree.avi", "vtest.avi"]
NEW_LABELS = ["walking", "riding a bicycle", "a rabbit stretching", "eating"]


def _export(ckpt, out, *extra) -> None:
    assert main(["export", str(ckpt), "--format", "onnx", "--out", str(out), *extra]) == 0


@pytest.fixture(scope="module")
def open_vocab(tmp_path_factory):
    """An open-vocabulary checkpoint and its ONNX export (label embeddings as an input)."""
    folder = tmp_path_factory.mktemp("open")
    torch.manual_seed(0)
    ckpt = save_model(create_model(tiny_config(head="text", trainable_label_embeddings=False), CLASSES), folder / "ckpt")
    _export(ckpt, folder / "model.onnx")
    return ckpt, folder / "model.onnx"


@pytest.fixture(scope="module")
def closed_set(tmp_path_factory):
    """A closed-set checkpoint (group-wise linear head, the default) and its ONNX export."""
    folder = tmp_path_factory.mktemp("closed")
    torch.manual_seed(1)
    ckpt = save_model(create_model(tiny_config(), CLASSES), folder / "ckpt")
    _export(ckpt, folder / "model.onnx")
    return ckpt, folder / "model.onnx"


def _probabilities(model, videos, labels=None) -> np.ndarray:
    preds = predict(model, videos, labels, precision="fp32")
    assert all(p.error is None for p in preds)
    return np.stack([p.probabilities for p in preds])


def test_onnxruntime_scores_real_clips_as_pytorch_for_new_class_names(open_vocab, shared_videos):
    ckpt, onnx_file = open_vocab
    videos = [shared_videos / v for v in VIDEOS]
    torch_probs = _probabilities(msqnet.load_model(ckpt), videos, NEW_LABELS)
    ort_probs = _probabilities(OnnxRuntimeModel(onnx_file), videos, NEW_LABELS)
    assert ort_probs.shape == (len(VIDEOS), len(NEW_LABELS))
    assert np.abs(ort_probs - torch_probs).max() < 1e-4


def test_an_open_vocabulary_export_scores_its_training_classes_by_default(open_vocab, shared_videos):
    ckpt, onnx_file = open_vocab
    videos = [shared_videos / "bikes.mp4", shared_videos / "tree.avi"]
    ort = OnnxRuntimeModel(onnx_file)
    assert ort.label_input and ort.class_names == CLASSES
    assert np.abs(_probabilities(ort, videos) - _probabilities(msqnet.load_model(ckpt), videos)).max() < 1e-4


def test_a_closed_set_export_has_its_label_set_fixed(closed_set, shared_videos):
    ckpt, onnx_file = closed_set
    videos = [shared_videos / v for v in VIDEOS]
    ort = OnnxRuntimeModel(onnx_file)
    assert not ort.label_input and [i.name for i in ort.session.get_inputs()] == ["video"]
    assert np.abs(_probabilities(ort, videos) - _probabilities(msqnet.load_model(ckpt), videos)).max() < 1e-4
    with pytest.raises(ValueError, match="fixed label set"):
        predict(ort, videos[0], ["walking", "swimming"])


def test_labels_at_export_fix_an_open_vocabulary_label_set(open_vocab, shared_videos, tmp_path):
    ckpt, _ = open_vocab
    _export(ckpt, tmp_path / "fixed.onnx", "--labels", ",".join(NEW_LABELS))
    ort = OnnxRuntimeModel(tmp_path / "fixed.onnx")
    assert ort.class_names == NEW_LABELS and [i.name for i in ort.session.get_inputs()] == ["video"]
    video = [shared_videos / "carphone_pristine.mp4"]
    expected = _probabilities(msqnet.load_model(ckpt), video, NEW_LABELS)
    assert np.abs(_probabilities(ort, video) - expected).max() < 1e-4


def test_cli_predict_with_onnxruntime_gives_the_torch_output(open_vocab, shared_videos, tmp_path):
    ckpt, onnx_file = open_vocab
    videos = [str(shared_videos / v) for v in ("bikes.mp4", "vtest.avi")]
    outputs = {}
    for backend, source in (("torch", ckpt), ("onnxruntime", onnx_file)):
        out = tmp_path / f"{backend}.json"
        rc = main(["predict", *videos, "--checkpoint", str(source), "--backend", backend, "--precision", "fp32",
                   "--labels", ",".join(NEW_LABELS), "--window", "5", "--format", "json", "--out", str(out), "--quiet"])
        assert rc == 0
        outputs[backend] = json.loads(out.read_text())
    for a, b in zip(outputs["torch"], outputs["onnxruntime"]):
        assert a["source"] == b["source"] and len(a["windows"]) == len(b["windows"]) > 1
        for wa, wb in zip(a["windows"], b["windows"]):
            assert max(abs(wa["probabilities"][l] - wb["probabilities"][l]) for l in NEW_LABELS) < 1e-4


def test_backend_and_file_mismatches_are_clear_errors(open_vocab, shared_videos, capsys):
    ckpt, onnx_file = open_vocab
    video = str(shared_videos / "bikes.mp4")
    cases = [
        (["--checkpoint", str(ckpt), "--backend", "onnxruntime"], "export it first"),
        (["--checkpoint", str(onnx_file)], "--backend onnxruntime"),
        (["--checkpoint", str(onnx_file), "--backend", "onnxruntime", "--precision", "bf16"], "fp32 graph"),
    ]
    for args, message in cases:
        assert main(["predict", video, *args, "--quiet"]) == 2
        assert message in capsys.readouterr().err


def test_labels_at_export_need_an_open_vocabulary_model(closed_set, tmp_path, capsys):
    ckpt, _ = closed_set
    assert main(["export", str(ckpt), "--format", "onnx", "--out", str(tmp_path / "x.onnx"), "--labels", "a,b"]) == 2
    assert "head: text" in capsys.readouterr().err and not (tmp_path / "x.onnx").exists()


def test_archive_predictions_run_on_onnxruntime_too(open_vocab, shared_videos, tmp_path):
    ckpt, onnx_file = open_vocab
    videos = [str(shared_videos / v) for v in ("bikes.mp4", "tree.avi")]
    lines = {}
    for backend, source in (("torch", ckpt), ("onnxruntime", onnx_file)):
        out = tmp_path / f"{backend}.jsonl"
        assert main(["predict", *videos, "--checkpoint", str(source), "--backend", backend, "--precision", "fp32",
                     "--out", str(out), "--num-workers", "0", "--quiet"]) == 0
        lines[backend] = [json.loads(line) for line in out.read_text().splitlines()]
    assert [l["source"] for l in lines["torch"]] == [l["source"] for l in lines["onnxruntime"]] == videos
    for a, b in zip(lines["torch"], lines["onnxruntime"]):
        assert max(abs(a["probabilities"][c] - b["probabilities"][c]) for c in CLASSES) < 1e-4


def test_a_frame_transformer_with_its_pixel_stream_exports_and_scores_real_clips_as_pytorch(shared_videos, tmp_path):
    """The CPU encoder's frozen CNN, its grayscale pixel channels (resized) and the trainable pixel CNN all export."""
    torch.manual_seed(2)
    # As msqnet-lite wires it (the clip's own embedding as the visual embedder), at the tiny size: CNN stages 1-3
    # (stride 8: a 4 x 4 grid at 32 px) and 4 x 4 pixels per token, so the frames are resized to 16 px for the pixel
    # channels. Stage 5 and a second, frozen EfficientNet as the visual embedder made the export 3x as long.
    config = tiny_config("frames", visual_embedder={"kind": "video_encoder"}, video_encoder={
        "kind": "frame_transformer", "mean": [0.5] * 3, "std": [0.5] * 3,
        "config": {"stage": 3, "hidden_size": 16, "num_layers": 1, "num_heads": 2, "pixel_patch": 4}})
    ckpt = save_model(create_model(config, CLASSES), tmp_path / "ckpt")
    _export(ckpt, tmp_path / "model.onnx")
    videos = [shared_videos / v for v in VIDEOS[:2]]
    torch_probs = _probabilities(msqnet.load_model(ckpt), videos)
    assert np.abs(_probabilities(OnnxRuntimeModel(tmp_path / "model.onnx"), videos) - torch_probs).max() < 1e-4


@pytest.mark.parametrize("isa", ["amx", "none"])
def test_onnxruntime_scores_clips_and_windows_as_pytorch_fp32_eager_on_any_cpu_isa(isa, open_vocab, shared_videos,
                                                                                   monkeypatch):
    """The exported graph runs fp32 whatever ``auto`` means for PyTorch on the CPU (tolerance 1e-4)."""
    from msqnet.models.attention import set_attention

    monkeypatch.setenv("MSQNET_CPU_ISA", isa)
    ckpt, onnx_file = open_vocab
    video = shared_videos / "bikes.mp4"
    ort, eager = OnnxRuntimeModel(onnx_file), set_attention(msqnet.load_model(ckpt), "eager")
    for kw in ({}, {"window": 4.0, "stride": 2.0}):
        got, expected = predict(ort, video, NEW_LABELS, precision="auto", **kw), predict(eager, video, NEW_LABELS,
                                                                                       precision="fp32", **kw)
        assert np.abs(got.probabilities - expected.probabilities).max() < 1e-4
        assert len(got.windows) == len(expected.windows)
        for a, b in zip(got.windows, expected.windows):
            assert np.abs(a.probabilities - b.probabilities).max() < 1e-4
