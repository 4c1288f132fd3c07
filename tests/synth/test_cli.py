"""``msqnet synth`` through the real CLI entry point: output, preview, frame folders, bad arguments."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from msqnet.cli import main
from msqnet.synth import SynthConfig, read_video
from msqnet.synth.generate import sample_split_clip
from msqnet.synth.render import render_clip

SMALL = ["--clips", "4", "--test-clips", "2", "--size", "48", "--frames", "6", "--workers", "1", "--no-progress"]


def test_synth_writes_a_dataset_and_a_preview_and_prints_a_summary(tmp_path: Path, capsys) -> None:
    out = tmp_path / "ds"
    assert main(["synth", str(out), *SMALL, "--preview"]) == 0
    printed = capsys.readouterr().out
    assert "wrote 8 clips" in printed and "chance mAP" in printed
    assert len(list((out / "videos").glob("*.mp4"))) == 8
    preview = Image.open(out / "preview.png")
    assert preview.format == "PNG" and preview.width > 6 * 48 and preview.height > 48
    assert (out / "generator.json").is_file()


def test_frame_folders_hold_exactly_the_rendered_frames(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    assert main(["synth", str(out), *SMALL, "--format", "frames"]) == 0
    with open(out / "train.csv", newline="") as f:
        row = next(csv.DictReader(f))
    folder = out / row["path"]
    assert row["path"] == "frames/train_00000" and sorted(p.name for p in folder.iterdir())[0] == "000000.png"
    cfg = SynthConfig(clips=4, test_clips=2, size=48, frames=6)
    expected = render_clip(sample_split_clip(cfg, "train", 0), 48).frames
    assert np.array_equal(read_video(folder), expected)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--clips", "0"], "clips: need at least 1"),
        (["--size", "30"], "size: must be an even number of pixels 32..2048"),
        (["--size", "49"], "even"),
        (["--frames", "1"], "frames: an action needs at least 2 frames"),
        (["--format", "avi"], "format: expected one of ['mp4', 'frames']"),
        (["--seed", "-1"], "seed: must be >= 0"),
        (["--unseen-actors", "dragon"], "unknown morphology 'dragon'"),
        (["--unseen-actors", "biped,quadruped,bird,snake,spider,octopus"], "at least one morphology must stay seen"),
        (["--unseen-classes", "flying"], "unknown class 'flying'"),
        (["--unseen-classes", "running"], "'chasing' is seen but implies 'running'"),
    ],
)
def test_bad_arguments_exit_2_with_a_clear_message(tmp_path: Path, capsys, args: list[str], message: str) -> None:
    out = tmp_path / "ds"
    assert main(["synth", str(out), *SMALL, *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("msqnet synth: error:") and message in err
    assert not out.exists() or not any(out.iterdir()), "nothing is written on bad arguments"


def test_an_existing_dataset_is_replaced_only_with_overwrite(tmp_path: Path, capsys) -> None:
    out = tmp_path / "ds"
    assert main(["synth", str(out), *SMALL]) == 0
    first = (out / "train.csv").read_text()
    assert main(["synth", str(out), *SMALL, "--seed", "5"]) == 2
    assert "not empty; pass --overwrite" in capsys.readouterr().err
    assert main(["synth", str(out), *SMALL, "--seed", "5", "--overwrite"]) == 0
    assert (out / "train.csv").read_text() != first


def test_overwrite_never_deletes_a_folder_that_is_not_a_dataset(tmp_path: Path, capsys) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    assert main(["synth", str(out), *SMALL, "--overwrite"]) == 2
    assert "refusing to overwrite" in capsys.readouterr().err
    assert (out / "notes.txt").read_text() == "keep me"
