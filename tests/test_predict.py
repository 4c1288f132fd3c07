"""``msqnet predict`` and ``model.predict``: real videos through the real decoder, any label set."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

import msqnet
from msqnet.checkpoint import save_model
from msqnet.cli import main
from msqnet.models import create_model

from .models.tiny import tiny_config

CLASSES = ["walking", "running", "eating"]
VIDEOS = ["bigbuckbunny.mp4", "bikes.mp4", "carphone_pristine.mp4", "tree.avi", "vtest.avi"]


@pytest.fixture(scope="module")
def open_vocab_ckpt(tmp_path_factory):
    torch.manual_seed(0)
    model = create_model(tiny_config(head="text", trainable_label_embeddings=False), CLASSES)
    return save_model(model, tmp_path_factory.mktemp("ckpt") / "open")


@pytest.fixture(scope="module")
def model(open_vocab_ckpt):
    return msqnet.load_model(open_vocab_ckpt)


def test_predict_scores_every_shared_video_for_new_class_names(model, shared_videos):
    labels = ["walking", "riding a bicycle", "a rabbit stretching"]
    preds = model.predict([shared_videos / v for v in VIDEOS], labels=labels)
    assert [p.source for p in preds] == [str(shared_videos / v) for v in VIDEOS]
    for p in preds:
        assert p.error is None and p.labels == labels
        assert p.probabilities.shape == (3,) and np.all((0 <= p.probabilities) & (p.probabilities <= 1))


def test_a_frame_folder_scores_like_the_video_it_came_from(model, shared_videos, tmp_path):
    from msqnet.data.decode import probe, read_frames

    video = shared_videos / "carphone_pristine.mp4"
    n = probe(video).num_frames
    frames = read_frames(video, list(range(n)))
    for i, f in enumerate(frames):
        Image.fromarray(f.permute(1, 2, 0).numpy()).save(tmp_path / f"{i:05d}.png")
    a, b = model.predict(video), model.predict(tmp_path)
    # Same frames and indices; only the resampling kernel differs (FFmpeg's swscale vs PIL).
    assert np.allclose(a.probabilities, b.probabilities, atol=0.03)


def test_tensor_input_gives_the_same_scores_as_the_model(model):
    clip = torch.rand(4, 3, 32, 32)
    pred = model.predict(clip, precision="fp32")
    expected = torch.sigmoid(model(clip.unsqueeze(0)).logits)[0].detach().numpy()
    assert np.allclose(pred.probabilities, expected, atol=1e-6) and pred.labels == CLASSES


def test_default_precision_is_bf16_where_the_cpu_has_it_and_close_to_fp32(model, shared_videos):
    from msqnet.precision import cpu_has_bf16, resolve_precision

    assert resolve_precision("auto", "cpu") == ("bf16" if cpu_has_bf16() else "fp32")
    video = shared_videos / "bikes.mp4"
    auto, fp32 = model.predict(video), model.predict(video, precision="fp32")
    assert np.allclose(auto.probabilities, fp32.probabilities, atol=0.02)
    assert next(model.parameters()).dtype == torch.float32  # autocast: the caller's model is left as it was


def test_cli_precision_fp32_gives_the_fp32_scores(open_vocab_ckpt, model, shared_videos, tmp_path):
    video = shared_videos / "tree.avi"
    rc = main(["predict", str(video), "--checkpoint", str(open_vocab_ckpt), "--precision", "fp32", "--format", "json",
               "--out", str(tmp_path / "p.json"), "--quiet"])
    got = json.loads((tmp_path / "p.json").read_text())[0]["probabilities"]
    expected = model.predict(video, precision="fp32")
    assert rc == 0 and np.allclose([got[c] for c in CLASSES], expected.probabilities, atol=1e-6)


def test_an_unknown_precision_is_a_clear_error(model):
    with pytest.raises(ValueError, match="precision: expected one of"):
        model.predict(torch.rand(4, 3, 32, 32), precision="fp8")


def test_windows_give_a_timeline_covering_the_video(model, shared_videos):
    pred = model.predict(shared_videos / "vtest.avi", window=10.0, stride=5.0)  # 795 frames at 10 fps
    starts = [w.start for w in pred.windows]
    assert starts[0] == 0.0 and pred.windows[-1].end == pytest.approx(79.5)
    assert all(w.end - w.start == pytest.approx(10.0) for w in pred.windows)
    assert np.allclose(pred.probabilities, np.max([w.probabilities for w in pred.windows], axis=0))


def test_cli_json_output_schema_and_timeline_png(open_vocab_ckpt, shared_videos, tmp_path):
    out = tmp_path / "pred.json"
    rc = main(["predict", str(shared_videos / "bikes.mp4"), "--checkpoint", str(open_vocab_ckpt), "--labels",
               "cycling, walking", "--window", "4", "--stride", "2", "--format", "json", "--out", str(out),
               "--timeline", str(tmp_path / "tl"), "--quiet"])
    assert rc == 0
    data = json.loads(out.read_text())
    assert set(data[0]) == {"source", "error", "view", "window_seconds", "aggregate", "probabilities", "calibration",
                            "thresholds", "detected", "windows"}
    assert data[0]["view"] == "windows" and data[0]["window_seconds"] == 4.0  # no clip duration recorded: as asked
    assert data[0]["calibration"] == "uncalibrated" and data[0]["detected"] is None
    assert set(data[0]["probabilities"]) == {"cycling", "walking"}
    assert len(data[0]["windows"]) >= 4 and set(data[0]["windows"][0]) == {"start", "end", "probabilities"}
    png = tmp_path / "tl" / "bikes.mp4.timeline.png"
    assert Image.open(png).size[0] > 500


def test_cli_reports_bad_files_and_still_scores_the_rest(open_vocab_ckpt, shared_videos, tmp_path, capsys):
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(np.random.default_rng(0).bytes(50_000))
    rc = main(["predict", str(tmp_path / "missing.mp4"), str(corrupt), str(shared_videos / "tree.avi"),
               "--checkpoint", str(open_vocab_ckpt), "--format", "csv", "--quiet"])
    captured = capsys.readouterr()
    assert rc == 1
    assert "missing.mp4" in captured.err and "corrupt.mp4" in captured.err and "2 of 3 inputs failed" in captured.err
    rows = [r.split(",") for r in captured.out.strip().splitlines()[1:]]
    assert sum(1 for r in rows if r[0].endswith("tree.avi") and r[4]) == len(CLASSES)


def test_closed_set_model_refuses_unknown_labels_clearly(tmp_path, shared_videos, capsys):
    ckpt = save_model(create_model(tiny_config(), CLASSES), tmp_path / "closed")
    rc = main(["predict", str(shared_videos / "tree.avi"), "--checkpoint", str(ckpt), "--labels", "flying"])
    assert rc == 2 and "head: text" in capsys.readouterr().err


def test_empty_or_duplicate_label_lists_are_errors(open_vocab_ckpt, shared_videos, capsys):
    assert main(["predict", str(shared_videos / "tree.avi"), "--checkpoint", str(open_vocab_ckpt), "--labels", " , "]) == 2
    assert main(["predict", str(shared_videos / "tree.avi"), "--checkpoint", str(open_vocab_ckpt), "--labels", "a,a"]) == 2
    assert "duplicate" in capsys.readouterr().err


def test_checkpoint_trained_on_the_synthetic_benchmark_scores_real_videos_with_unseen_names(tmp_path, shared_videos):
    """Train briefly on rendered data, then predict real videos with seen and never-trained class names."""
    from msqnet.config_loader import from_dict, write_config_file
    from msqnet.engine.config import TrainConfig
    from msqnet.engine.trainer import train
    from msqnet.synth import SynthConfig, generate_dataset

    data = tmp_path / "synth"
    generate_dataset(data, SynthConfig(clips=16, test_clips=4, size=32, frames=8, workers=1), progress=False)
    model_file = tmp_path / "open.yaml"
    write_config_file(tiny_config(head="text", trainable_label_embeddings=False), model_file)
    cfg = from_dict(TrainConfig, {
        "model": str(model_file), "data": {"format": "generic", "annotations": str(data)},
        "zero_shot": str(data / "splits" / "zero_shot.json"), "eval_splits": [], "sampling": {"num_frames": 4},
        "transform": {"size": 32}, "optim": {"lr": 1e-3}, "epochs": 1, "batch_size": 4, "num_workers": 0,
        "output_dir": str(tmp_path / "run"), "tensorboard": False,
    })
    result = train(cfg, progress=False)
    model = msqnet.load_model(result.last_state)
    unseen = json.loads((data / "splits" / "zero_shot.json").read_text())["unseen"]
    labels = ["walking", *unseen]
    preds = model.predict([shared_videos / v for v in VIDEOS], labels=labels)
    assert all(p.error is None and p.probabilities.shape == (len(labels),) for p in preds)
    assert len({tuple(np.round(p.probabilities, 6)) for p in preds}) > 1  # different videos, different scores


def test_decoding_in_worker_processes_gives_the_same_predictions(model, shared_videos):
    videos = [shared_videos / v for v in VIDEOS]
    here = model.predict(videos, window=5.0, num_workers=0)
    workers = model.predict(videos, window=5.0, num_workers=2)
    for a, b in zip(here, workers):
        assert a.source == b.source and len(a.windows) == len(b.windows)
        assert np.allclose(a.probabilities, b.probabilities, atol=1e-6)


@pytest.fixture(scope="module")
def diverged():
    """A model whose weights hold NaN, as a diverged training run leaves them (checkpoints refuse them)."""
    torch.manual_seed(0)
    model = create_model(tiny_config(head="text", trainable_label_embeddings=False), CLASSES)
    with torch.no_grad():
        model.token_proj.weight[0, 0] = float("nan")
    return model.eval()


def _strict_json(text: str):
    def no_constants(token: str):
        raise AssertionError(f"{token} in the predictions")

    return json.loads(text, parse_constant=no_constants)


def test_non_finite_scores_are_an_error_naming_the_file_never_a_nan_in_the_lines(diverged, shared_videos, tmp_path):
    from msqnet.engine.distributed import DistInfo
    from msqnet.inference.predict import model_scorer
    from msqnet.inference.archive import predict_to_jsonl

    videos = [str(shared_videos / v) for v in ("tree.avi", "bikes.mp4")]
    out = tmp_path / "pred.jsonl"
    summary = predict_to_jsonl(videos, out, model_scorer(diverged), CLASSES, model=diverged, progress=False,
                               dist=DistInfo(rank=0, world_size=1, local_rank=0, device=torch.device("cpu")))
    lines = [_strict_json(line) for line in out.read_text().splitlines()]
    assert [p["source"] for p in lines] == videos and all(p["probabilities"] is None for p in lines)
    assert all(p["error"].startswith(f"{v}: the model's scores are NaN or infinite") for p, v in zip(lines, videos))
    assert len(summary.failed) == 2


def test_a_clip_tensor_with_non_finite_scores_is_a_value_error(diverged):
    with pytest.raises(ValueError, match="NaN or infinite"):
        diverged.predict(torch.rand(4, 3, 32, 32))
