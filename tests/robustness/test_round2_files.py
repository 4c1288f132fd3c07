"""Issue 23, classes 1-4: one odd file must not end a run, a user's files are never destroyed, nothing
hangs, and a resumed predictions file never mixes two runs.

1. MP4s cut with an edit list (what ``ffmpeg -ss 2.5 -i in.mp4 -c copy cut.mp4`` writes) decode
   their presented timeline in every command.
2. msqnet replaces only what it wrote itself (a folder carrying its mark), and says so when refusing.
3. A FIFO given as a video is refused before it is opened; a stride shorter than a frame is refused
   before any window is laid.
4. Every line of an archive's predictions file records what it was made with; a resume with other
   settings is refused, and lines that hold no valid result are scored again.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

import msqnet
from msqnet.data.decode import DecodeError, probe, read_frames
from msqnet.data.timeline import timeline_windows
from msqnet.synth import SynthConfig, generate_dataset

from ..models.tiny import tiny_config
from ..videos import write_cut_video, write_indexed_video
from .conftest import assert_clean_error, best_model_copy, run_msqnet, strict_json, videos_copy

CUT_AT = 2.5  # seconds, as in the ffmpeg command
CUT_FIRST = 63  # the first frame of the 25 fps source shown at or after 2.5 s (frame 62 starts at 2.48 s)


@pytest.fixture(scope="module")
def cut_video(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """``(source, cut)``: a 4 s, 25 fps clip whose frame i is grey 2i, and its copy cut at 2.5 s with an edit list."""
    folder = tmp_path_factory.mktemp("edit_list")
    source = write_indexed_video(folder / "source.mp4")
    return source, write_cut_video(source, folder / "cut.mp4", CUT_AT)


def test_the_cut_file_really_holds_an_edit_list_over_hidden_frames(cut_video):
    import av

    _, cut = cut_video
    with av.open(str(cut)) as container:
        stream = container.streams.video[0]
        packets = [p for p in container.demux(stream) if p.size]
    assert b"elst" in cut.read_bytes()
    assert sum(p.is_discard for p in packets) == CUT_FIRST - 50  # the GOP from the keyframe at 2.0 s to the cut


def test_an_edit_list_video_gives_its_presented_frames(cut_video):
    source, cut = cut_video
    info = probe(cut)
    assert info.num_frames == 100 - CUT_FIRST and info.duration == pytest.approx((100 - CUT_FIRST) / 25)
    shown = read_frames(cut, range(info.num_frames)).float().mean(dim=(1, 2, 3))  # (N,)
    expected = read_frames(source, range(CUT_FIRST, 100)).float().mean(dim=(1, 2, 3))
    assert torch.allclose(shown, expected, atol=1.0)  # frames 2 grey levels apart: off by one would fail


def test_an_edit_list_video_seeks_to_its_presented_frames(cut_video):
    source, cut = cut_video
    late = [30, 5, 36]  # the keyframe of 30 lies past the cut: read with a seek
    got = read_frames(cut, late).float().mean(dim=(1, 2, 3))
    assert torch.allclose(got, read_frames(source, [CUT_FIRST + i for i in late]).float().mean(dim=(1, 2, 3)), atol=1.0)


def test_predict_scores_an_edit_list_video(cut_video, trained_run: Path, tmp_path: Path):
    _, cut = cut_video
    out = tmp_path / "pred.json"
    result = run_msqnet("predict", cut, "--checkpoint", trained_run, "--out", out, "--num-workers", "1", "--quiet")
    assert result.code == 0, result.err
    [pred] = strict_json(out.read_text())
    assert pred["error"] is None and pred["probabilities"]


def test_model_predict_scores_an_edit_list_video_with_windows(cut_video, trained_run: Path):
    _, cut = cut_video
    pred = msqnet.load_model(trained_run).predict(str(cut), window=0.5)
    assert pred.error is None and pred.windows[-1].end == pytest.approx(probe(cut).duration)


def _list_file(path: Path, videos: list[Path]) -> Path:
    path.write_text("".join(f"{v}\n" for v in videos))
    return path


def test_archive_prediction_writes_every_line_with_an_edit_list_video_among_them(cut_video, data_dir: Path,
                                                                               trained_run: Path, tmp_path: Path):
    _, cut = cut_video
    videos = [data_dir / "videos" / "test_seen_00000.mp4", cut, data_dir / "videos" / "test_seen_00001.mp4"]
    out = tmp_path / "preds.jsonl"
    result = run_msqnet("predict", "--files", _list_file(tmp_path / "list.txt", videos), "--checkpoint", trained_run,
                        "--out", out, "--num-workers", "0", "--quiet")
    assert result.code == 0, result.err
    lines = [strict_json(line) for line in out.read_text().splitlines()]
    assert [r["source"] for r in lines] == [str(v) for v in videos] and all(r["error"] is None for r in lines)


@pytest.fixture(scope="module")
def cut_dataset(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny benchmark with one train and one test video replaced by their copies cut at frame 2 (edit lists)."""
    root = videos_copy(data_dir, tmp_path_factory.mktemp("cut_data") / "root")
    fps = probe(data_dir / "videos" / "train_00000.mp4").fps
    for name in ("train_00000.mp4", "test_seen_00003.mp4"):
        write_cut_video(data_dir / "videos" / name, root / "videos" / name, 2 / fps)
        assert probe(root / "videos" / name).num_frames == probe(data_dir / "videos" / name).num_frames - 2
    return root


def test_evaluate_reads_an_edit_list_video_without_skipping_it(cut_dataset: Path, train_config: Path,
                                                                trained_run: Path):
    result = run_msqnet("evaluate", trained_run, "--data", train_config, "--set", f"data.root={cut_dataset}",
                        "--set", f"data.annotations={cut_dataset}", "--split", "test_seen", "--no-progress", "--json")
    assert result.code == 0, result.err
    assert "test_seen_00003" not in result.out  # not listed as skipped


def test_training_reads_an_edit_list_video(cut_dataset: Path, train_config: Path, tmp_path: Path):
    result = run_msqnet("train", train_config, f"data.root={cut_dataset}", f"data.annotations={cut_dataset}",
                        "epochs=1", f"output_dir={tmp_path / 'run'}", "--no-progress")
    assert result.code == 0, result.err
    assert "skipped" not in result.err


def test_data_check_finds_nothing_wrong_with_an_edit_list_video(cut_dataset: Path):
    result = run_msqnet("data", "check", "--format", "generic", "--annotations", cut_dataset, "--root", cut_dataset,
                        "--split", "test_seen", "--full-decode")
    assert result.code == 0, result.out + result.err


# --- 2. only what msqnet wrote is replaced ---------------------------------------------------------


def _user_folder(path: Path) -> Path:
    (path / "photos").mkdir(parents=True)
    (path / "notes.txt").write_text("mine")
    (path / "photos" / "a.jpg").write_bytes(b"jpeg")
    return path


def _contents(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(0)
    return msqnet.create_model(tiny_config(), ["walking", "running"])


def test_save_model_refuses_a_folder_it_did_not_write(tiny_model, tmp_path: Path):
    folder = _user_folder(tmp_path / "mine")
    before = _contents(folder)
    with pytest.raises(ValueError, match=r"mine: exists and is not a model checkpoint written by msqnet .*refusing"):
        msqnet.save_model(tiny_model, folder)
    assert _contents(folder) == before


def test_save_model_refuses_a_regular_file(tiny_model, tmp_path: Path):
    path = tmp_path / "model"
    path.write_text("a file of mine")
    with pytest.raises(ValueError, match="model: exists and is not a folder; refusing"):
        msqnet.save_model(tiny_model, path)
    assert path.read_text() == "a file of mine"


def test_save_model_replaces_its_own_checkpoint(tiny_model, tmp_path: Path):
    msqnet.save_model(tiny_model, tmp_path / "model")
    (tmp_path / "model" / "stale.txt").write_text("from an older save")
    msqnet.save_model(tiny_model, tmp_path / "model")
    assert not (tmp_path / "model" / "stale.txt").exists() and (tmp_path / "model" / "config.json").is_file()


def test_a_model_that_scored_new_labels_saves_a_checkpoint_that_loads(tmp_path: Path):
    torch.manual_seed(0)
    model = msqnet.create_model(tiny_config(head="text", trainable_label_embeddings=False), ["walking", "running"])
    model.embed_labels(["flying"])  # builds the frozen text encoder, which is never saved
    msqnet.save_model(model, tmp_path / "model")
    assert msqnet.load_model(tmp_path / "model").class_names == ["walking", "running"]


def test_convert_reference_refuses_an_out_folder_it_did_not_write(tmp_path: Path):
    folder = _user_folder(tmp_path / "mine")
    before = _contents(folder)
    result = run_msqnet("convert-reference", tmp_path / "w.safetensors", "--config", tmp_path / "ref.json",
                        "--out", folder)
    assert_clean_error(result, "convert-reference", str(folder), "not a model checkpoint written by msqnet")
    assert _contents(folder) == before


def test_convert_reference_refuses_an_out_that_is_a_file(tmp_path: Path):
    path = tmp_path / "out.bin"
    path.write_bytes(b"data")
    result = run_msqnet("convert-reference", tmp_path / "w.safetensors", "--config", tmp_path / "ref.json",
                        "--out", path)
    assert_clean_error(result, "convert-reference", str(path), "not a folder")
    assert path.read_bytes() == b"data"


SMALL_SYNTH = ["--clips", "2", "--test-clips", "1", "--size", "32", "--frames", "4", "--workers", "1", "--no-progress"]


def test_synth_overwrite_keeps_the_videos_of_a_folder_synth_never_wrote(tmp_path: Path):
    folder = tmp_path / "footage"
    (folder / "videos").mkdir(parents=True)
    (folder / "videos" / "holiday.mp4").write_bytes(b"my video")
    before = _contents(folder)
    result = run_msqnet("synth", folder, *SMALL_SYNTH, "--overwrite")
    assert_clean_error(result, "synth", str(folder), "holds no msqnet synth output", "refusing to overwrite")
    assert _contents(folder) == before


def test_synth_overwrite_replaces_an_interrupted_generation(tmp_path: Path, monkeypatch):
    from msqnet.synth import generate

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    folder = tmp_path / "synth"
    monkeypatch.setattr(generate, "_write_datasheet", interrupted)  # Ctrl-C before generator.json is written
    with pytest.raises(KeyboardInterrupt):
        generate_dataset(folder, SynthConfig(clips=2, test_clips=1, size=32, frames=4, workers=1), progress=False)
    monkeypatch.undo()
    assert not (folder / "generator.json").exists() and any((folder / "videos").iterdir())
    assert run_msqnet("synth", folder, *SMALL_SYNTH, "--overwrite").code == 0
    assert (folder / "generator.json").is_file() and not (folder / ".msqnet-synth.json").exists()


@pytest.mark.parametrize("what", ["a video", "the input list"])
def test_predict_resume_refuses_an_out_that_is_not_its_predictions_file_and_leaves_it_whole(
        what: str, data_dir: Path, trained_run: Path, tmp_path: Path):
    video = tmp_path / "clip.mp4"
    shutil.copy(data_dir / "videos" / "test_seen_00000.mp4", video)
    files = _list_file(tmp_path / "list.txt", [video])
    files.write_bytes(files.read_bytes() + b"# no newline at the end")  # a torn "last line"
    out = video if what == "a video" else files
    before = out.read_bytes()
    result = run_msqnet("predict", "--files", files, "--checkpoint", trained_run, "--out", out, "--format", "jsonl",
                        "--resume", "--num-workers", "0", "--quiet")
    assert_clean_error(result, "predict", str(out), "it is left as it is")
    assert out.read_bytes() == before


# --- 3. nothing hangs ---------------------------------------------------------------------------------


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "stream.mp4"
    os.mkfifo(path)
    return path


@pytest.mark.parametrize("workers", ["0", "2"])
def test_predict_refuses_a_fifo_given_as_a_video(fifo: Path, trained_run: Path, workers: str):
    result = run_msqnet("predict", fifo, "--checkpoint", trained_run, "--num-workers", workers, "--quiet")
    assert result.code == 1 and "Traceback" not in result.err
    assert f"{fifo}: is a FIFO (named pipe), not a video file or a frame folder" in result.out + result.err


def test_data_check_reports_a_fifo_given_as_a_video(data_dir: Path, tmp_path: Path):
    root = videos_copy(data_dir, tmp_path / "root")
    target = root / "videos" / "test_seen_00002.mp4"
    target.unlink()
    os.mkfifo(target)
    result = run_msqnet("data", "check", "--format", "generic", "--annotations", root, "--root", root,
                        "--split", "test_seen")
    assert result.code == 1 and "test_seen_00002.mp4" in result.out and "FIFO" in result.out


def test_a_fifo_among_the_frames_of_a_folder_is_refused(tmp_path: Path):
    folder = tmp_path / "frames"
    folder.mkdir()
    os.mkfifo(folder / "000001.jpg")
    with pytest.raises(DecodeError, match=r"000001.jpg: is a FIFO \(named pipe\), not an image file"):
        probe(folder)


@pytest.mark.parametrize("option", ["--stride", "--window"])
def test_predict_refuses_a_stride_shorter_than_a_frame_at_once(option: str, data_dir: Path, trained_run: Path):
    video = data_dir / "videos" / "test_seen_00000.mp4"
    window = ["--window", "1e-9"] if option == "--window" else ["--window", "0.2", "--stride", "1e-9"]
    result = run_msqnet("predict", video, "--checkpoint", trained_run, *window, "--num-workers", "0", "--quiet",
                        timeout=30)
    assert result.code == 1 and "expected a stride of at least one frame" in result.out + result.err


def test_windows_start_at_most_once_per_frame(cut_video):
    info = probe(cut_video[0])  # 100 frames at 25 fps: 4 s
    assert len(timeline_windows(info, 1.0, 1 / 25)) == 76  # a window per frame up to 3 s: allowed
    with pytest.raises(ValueError, match="lays 101 windows on a video of 100 frames"):
        timeline_windows(info, 1.0, 0.03)
    with pytest.raises(ValueError, match="expected a stride of at least one frame"):
        timeline_windows(info, 1e-9, 1e-9)


# --- 4. a resumed predictions file never mixes two runs -------------------------------------------------


def _archive(data_dir: Path, tmp_path: Path, n: int = 3) -> tuple[Path, Path]:
    """A list of ``n`` test videos and where their predictions go."""
    videos = [data_dir / "videos" / f"test_seen_{i:05d}.mp4" for i in range(n)]
    return _list_file(tmp_path / "list.txt", videos), tmp_path / "preds.jsonl"


def _predict_jsonl(files: Path, out: Path, checkpoint: Path, *extra: str):
    # One clip per batch: a video's scores are then bit-identical whichever videos a run scores.
    return run_msqnet("predict", "--files", files, "--checkpoint", checkpoint, "--out", out, "--num-workers", "0",
                      "--batch-size", "1", "--quiet", *extra)


def _lines(out: Path) -> list[dict]:
    return [strict_json(line) for line in out.read_text().splitlines()]


def test_every_line_records_what_it_was_made_with(data_dir: Path, trained_run: Path, tmp_path: Path):
    files, out = _archive(data_dir, tmp_path)
    assert _predict_jsonl(files, out, trained_run, "--window", "0.2", "--test-clips", "2").code == 0
    made = [r["made_with"] for r in _lines(out)]
    assert made[0] == made[-1] and set(made[0]) == {"model", "labels", "window", "stride", "test_view", "precision",
                                                     "view", "threshold", "events"}
    assert (made[0]["window"], made[0]["stride"], made[0]["test_view"]["clips"]) == (0.2, 0.2, 2)


@pytest.mark.parametrize("first, then, named", [
    ([], ["--window", "0.2"], "another --window"),
    (["--window", "0.2"], ["--window", "0.2", "--stride", "0.1"], "another --stride"),
    ([], ["--test-clips", "2"], "another test view"),
    (["--precision", "fp32"], ["--precision", "bf16"], "another --precision"),
    (["--view", "whole"], [], "another --view"),
])
def test_resume_with_other_settings_is_refused_and_the_file_kept(first, then, named, data_dir: Path,
                                                                 trained_run: Path, tmp_path: Path):
    files, out = _archive(data_dir, tmp_path, n=2)
    assert _predict_jsonl(files, out, trained_run, *first).code == 0
    out.write_bytes(out.read_bytes() + b'{"source": "torn')  # a torn last line is not cut either
    before = out.read_bytes()
    _list_file(files, [data_dir / "videos" / f"test_seen_{i:05d}.mp4" for i in range(3)])  # one more to do
    result = _predict_jsonl(files, out, trained_run, *then, "--resume")
    assert_clean_error(result, "predict", f"{out}:1", named, "write another --out")
    assert out.read_bytes() == before


def test_resume_with_another_checkpoint_is_refused(data_dir: Path, trained_run: Path, tmp_path: Path):
    files, out = _archive(data_dir, tmp_path, n=2)
    assert _predict_jsonl(files, out, trained_run).code == 0
    other = best_model_copy(trained_run, tmp_path / "retrained")
    weights = load_file(str(other / "model.safetensors"))
    name = next(k for k, v in weights.items() if v.is_floating_point())
    weights[name] = weights[name] + 0.01  # the same architecture and classes, other weights
    save_file(weights, str(other / "model.safetensors"), metadata={"format": "msqnet-model"})
    result = _predict_jsonl(files, out, other, "--resume")
    assert_clean_error(result, "predict", f"{out}:1", "another model")


@pytest.mark.parametrize("bad", [float("nan"), "0.5", [0.5], None, 1.5])
def test_a_done_line_without_valid_probabilities_is_scored_again(bad, data_dir: Path, trained_run: Path,
                                                                 tmp_path: Path):
    files, out = _archive(data_dir, tmp_path, n=2)
    assert _predict_jsonl(files, out, trained_run).code == 0
    good = _lines(out)
    damaged = [dict(r, probabilities=dict(r["probabilities"])) for r in good]
    label = next(iter(damaged[1]["probabilities"]))
    damaged[1]["probabilities"][label] = bad
    out.write_text("".join(json.dumps(r) + "\n" for r in damaged))  # json writes NaN as the bare token NaN
    result = _predict_jsonl(files, out, trained_run, "--resume")
    assert result.code == 0, result.err
    assert "1 already done" in result.err and "1 line(s) of the resumed file held no valid prediction" in result.err
    assert _lines(out) == good  # strict JSON, the damaged value replaced by the video's real scores


def test_a_done_line_with_broken_windows_is_scored_again(data_dir: Path, trained_run: Path, tmp_path: Path):
    files, out = _archive(data_dir, tmp_path, n=1)
    assert _predict_jsonl(files, out, trained_run, "--window", "0.2").code == 0
    [good] = _lines(out)
    out.write_text(json.dumps(dict(good, windows=[{"start": "0", "end": None, "probabilities": []}])) + "\n")
    assert _predict_jsonl(files, out, trained_run, "--window", "0.2", "--resume").code == 0
    assert _lines(out) == [good]


def test_resume_refuses_a_file_of_lines_msqnet_did_not_write(data_dir: Path, trained_run: Path, tmp_path: Path):
    files, out = _archive(data_dir, tmp_path, n=2)
    assert _predict_jsonl(files, out, trained_run).code == 0
    foreign = [{k: v for k, v in r.items() if k != "made_with"} for r in _lines(out)]  # e.g. another tool's
    out.write_text("".join(json.dumps(r) + "\n" for r in foreign))
    before = out.read_bytes()
    result = _predict_jsonl(files, out, trained_run, "--resume")
    assert_clean_error(result, "predict", f"{out}:1", "not a line msqnet predict writes", "left as it is")
    assert out.read_bytes() == before
