"""``msqnet explain``: per-label contact sheets, overlaid videos and numbers of a real video."""
from __future__ import annotations

import json

import av
import pytest
import torch
from PIL import Image

from msqnet.checkpoint import save_model
from msqnet.cli import main
from msqnet.cli.explain import METHODS as CLI_METHODS
from msqnet.inference.explain import METHODS
from msqnet.models import create_model

from ..models.tiny import tiny_config
from ..videos import write_moving_video

CLASSES = ["walking", "running", "eating"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    model = create_model(tiny_config("frames", head="text", trainable_label_embeddings=False), CLASSES)
    return save_model(model, tmp_path_factory.mktemp("explain") / "ckpt")


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    return write_moving_video(tmp_path_factory.mktemp("videos") / "moving.mp4", seconds=2.0, size=(48, 32))


def test_the_command_offers_the_librarys_methods():
    assert set(CLI_METHODS) == set(METHODS)


def test_explain_writes_a_sheet_a_video_and_the_numbers_per_label(checkpoint, video, tmp_path):
    out = tmp_path / "out"
    assert main(["explain", str(video), "--checkpoint", str(checkpoint), "--labels", "walking,a square moving",
                 "--out", str(out)]) == 0
    for slug, label in (("walking", "walking"), ("a_square_moving", "a square moving")):
        sheet = Image.open(out / f"{slug}.png")
        assert sheet.width == 4 * 160 and sheet.height > 160  # four frames, at least 160 px each, and the strip
        with av.open(str(out / f"{slug}.mp4")) as container:
            assert sum(1 for _ in container.decode(video=0)) == 4
        numbers = json.loads((out / f"{slug}.json").read_text())
        assert [x["label"] for x in numbers["labels"]] == [label]
        assert len(numbers["labels"][0]["temporal"]) == 4 and numbers["method"] == "gradcam"


def test_explain_with_a_window_writes_one_folder_per_window(checkpoint, video, tmp_path):
    out = tmp_path / "out"
    assert main(["explain", str(video), "--checkpoint", str(checkpoint), "--window", "1", "--top", "1",
                 "--method", "rollout", "--out", str(out)]) == 0
    folders = sorted(p.name for p in out.iterdir())
    assert [f.split("_")[0] for f in folders] == ["w0000", "w0001"]  # 2 s of video, 1 s windows
    for folder in folders:
        assert len(list((out / folder).glob("*.png"))) == 1  # --top 1: the most probable class


def test_a_missing_video_is_one_line_naming_it(checkpoint, tmp_path, capsys):
    assert main(["explain", str(tmp_path / "nope.mp4"), "--checkpoint", str(checkpoint), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nope.mp4" in err[0]


def test_the_page_hook_writes_the_clicked_labels_sheet_and_video(checkpoint, video, tmp_path):
    import msqnet
    from msqnet.inference.overlay import label_overlay

    png, mp4 = label_overlay(msqnet.load_model(checkpoint), video, "falling down", tmp_path)
    assert png.endswith("falling_down.png") and Image.open(png).width == 4 * 160
    with av.open(mp4) as container:
        assert sum(1 for _ in container.decode(video=0)) == 4
