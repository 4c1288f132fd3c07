"""Every command against generated bad inputs: one error line naming the culprit and a non-zero exit,
or, where the user chose skipping, a counted skip; never a traceback, a hang, NaN or invalid JSON.

Each case builds its bad input (a damaged copy of real files: the tiny synthetic benchmark, a run
trained on it) and says what the command must answer. The classes are those of issue 11 and the
data issue: errors the CLI did not catch, non-finite settings, checkpoints that disagree with
themselves, video metadata, errors that named nothing, and bad datasets.
"""
from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest
from PIL import Image
from safetensors.torch import load_file, save_file

from .conftest import (
    CliResult,
    annotations_copy,
    assert_clean_error,
    best_model_copy,
    run_copy,
    run_msqnet,
    strict_json,
    videos_copy,
)


@dataclass
class Error:
    """The command must stop: exit ``code``, one ``msqnet <command>: error:`` line naming ``culprits``."""

    command: str
    culprits: tuple[str, ...]
    code: int = 2

    def check(self, result: CliResult) -> None:
        assert_clean_error(result, self.command, *self.culprits, code=self.code)


@dataclass
class Handled:
    """The command copes (skips and counts, or reports problems it found): exit ``code``, ``texts`` in its output."""

    code: int
    texts: tuple[str, ...] = ()
    json_out: bool = False

    def check(self, result: CliResult) -> None:
        context = f"argv={result.argv}\nstdout:\n{result.out[-3000:]}\nstderr:\n{result.err[-3000:]}"
        assert result.code == self.code, context
        assert "Traceback" not in result.err and "internal error" not in result.err, context
        for text in self.texts:
            assert text in result.out + result.err, f"{text!r} missing\n{context}"
        if self.json_out:
            strict_json(result.out)


def error(command: str, *culprits: str, code: int = 2) -> Error:
    return Error(command, culprits, code)


def handled(code: int, *texts: str, json_out: bool = False) -> Handled:
    return Handled(code, texts, json_out)


class Bad:
    """Makes the bad inputs of one test in its own folder, from the session's real data and run."""

    def __init__(self, tmp: Path, data: Path, config: Path, run: Path):
        self.tmp, self.data, self.config, self.run = tmp, data, config, run

    @property
    def out(self) -> str:
        """A fresh output_dir override."""
        return f"output_dir={self.tmp / 'out'}"

    def root_with_corrupt_video(self, name: str) -> Path:
        """A dataset root whose video ``name`` is truncated to its first 3 KB."""
        root = videos_copy(self.data, self.tmp / "root")
        video = root / "videos" / name
        video.write_bytes(video.read_bytes()[:3000])
        return root

    def annotations(self, train_csv: str | bytes | None = None) -> Path:
        """An annotation folder (root: the real videos) whose train.csv is replaced when given."""
        ann = annotations_copy(self.data, self.tmp / "ann")
        if train_csv is not None:
            target = ann / "train.csv"
            target.write_bytes(train_csv if isinstance(train_csv, bytes) else train_csv.encode("utf-8"))
        return ann

    def train_rows(self) -> list[list[str]]:
        """The real train.csv as rows (header first)."""
        with open(self.data / "train.csv", newline="", encoding="utf-8") as f:
            return list(csv.reader(f))

    @staticmethod
    def csv_text(rows: list[list[str]]) -> str:
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows(rows)
        return buf.getvalue()

    def model_copy(self) -> Path:
        return best_model_copy(self.run, self.tmp / "model")

    def run_copy(self) -> Path:
        return run_copy(self.run, self.tmp / "run")

    def file(self, name: str, content: str | bytes) -> Path:
        path = self.tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
        return path

    def video(self, split: str = "test_seen", index: int = 0) -> Path:
        return self.data / "videos" / f"{split}_{index:05d}.mp4"


def edit_json(path: Path, change: Callable[[dict], None]) -> Path:
    doc = json.loads(path.read_text(encoding="utf-8"))
    change(doc)
    path.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    return path


CASES: dict[str, Callable[[Bad], tuple[list, Error | Handled]]] = {}


def case(fn: Callable[[Bad], tuple[list, Error | Handled]]):
    CASES[fn.__name__] = fn
    return fn


# --- 1. errors no command caught ----------------------------------------------------------------------


@case
def train_with_a_corrupt_video_under_on_error_raise(b: Bad):
    root = b.root_with_corrupt_video("train_00000.mp4")
    return (["train", b.config, f"data.root={root}", f"data.annotations={root}", b.out, "--no-progress"],
            error("train", "train_00000.mp4", "on_error: skip"))


@case
def train_with_a_corrupt_video_read_in_a_loader_worker(b: Bad):
    root = b.root_with_corrupt_video("train_00000.mp4")
    return (["train", b.config, f"data.root={root}", f"data.annotations={root}", "num_workers=1", b.out,
             "--no-progress"], error("train", "train_00000.mp4"))


@case
def train_with_a_corrupt_video_under_on_error_skip_counts_it(b: Bad):
    root = b.root_with_corrupt_video("train_00000.mp4")
    return (["train", b.config, f"data.root={root}", f"data.annotations={root}", "data.on_error=skip", "epochs=1",
             b.out, "--no-progress"], handled(0, "1 clip(s) skipped"))


@case
def evaluate_with_a_corrupt_video(b: Bad):
    root = b.root_with_corrupt_video("test_seen_00003.mp4")
    return (["evaluate", b.run, "--data", b.config, "--set", f"data.root={root}", "--set", f"data.annotations={root}",
             "--split", "test_seen", "--no-progress"], error("evaluate", "test_seen_00003.mp4"))


@case
def evaluate_with_a_corrupt_video_under_on_error_skip_counts_it(b: Bad):
    root = b.root_with_corrupt_video("test_seen_00003.mp4")
    return (["evaluate", b.run, "--data", b.config, "--set", f"data.root={root}", "--set", f"data.annotations={root}",
             "--set", "data.on_error=skip", "--split", "test_seen", "--no-progress", "--json"],
            handled(0, '"test_seen_00003"', json_out=True))


@case
def data_check_a_csv_field_over_the_csv_field_limit(b: Bad):
    rows = b.train_rows()
    rows[2][5] = "x" * 200_000  # a metadata column 200 KB long: over Python's 128 KiB csv limit
    ann = b.annotations(b.csv_text(rows))
    return (["data", "check", "--format", "generic", "--annotations", ann, "--root", b.data, "--split", "train",
             "--no-decode"], handled(1, "train.csv:3", "field larger than field limit"))


@case
def score_a_csv_field_over_the_csv_field_limit(b: Bad):
    preds = b.file("preds.csv", "id,class,score\n" + "a" * 200_000 + ",walking,0.5\n")
    return (["score", preds, "-g", b.data / "test_seen.csv", "--classes", b.data / "classes.json"],
            error("score", "preds.csv:2", "field larger than field limit"))


@case
def score_a_folder_given_as_the_predictions_file(b: Bad):
    return (["score", b.data / "videos", "-g", b.data / "test_seen.csv", "--classes", b.data / "classes.json"],
            error("score", "videos", "is a folder"))


@case
def train_a_folder_given_as_the_config(b: Bad):
    return ["train", b.data], error("train", str(b.data), "is a folder")


@case
def predict_with_a_file_given_as_the_checkpoint_folder(b: Bad):
    config = (b.run / "best" / "config.json")
    return (["predict", b.video(), "--checkpoint", config, "--quiet"],
            error("predict", "config.json", "expected a checkpoint folder"))


@case
def predict_with_an_infinite_window(b: Bad):
    return ["predict", b.video(), "--checkpoint", b.run, "--window", "inf"], error("predict", "--window", "'inf'")


@case
def predict_with_a_nan_window(b: Bad):
    return ["predict", b.video(), "--checkpoint", b.run, "--window", "nan"], error("predict", "--window", "'nan'")


@case
def predict_with_a_negative_stride(b: Bad):
    return (["predict", b.video(), "--checkpoint", b.run, "--window", "1", "--stride", "-1"],
            error("predict", "--stride", "above 0"))


@case
def convert_reference_with_a_folder_as_weights(b: Bad):
    config = b.file("ref.json", '{"timesformer_config": {}, "clip_vision_config": {}, "num_frames": 8}')
    return (["convert-reference", b.data, "--config", config, "--out", b.tmp / "conv"],
            error("convert-reference", str(b.data), "is a folder"))


@case
def convert_reference_with_corrupt_weights(b: Bad):
    weights = b.file("w.safetensors", b"\x10\x00\x00\x00\x00\x00\x00\x00{not a header}")
    config = b.file("ref.json", '{"timesformer_config": {}, "clip_vision_config": {}, "num_frames": 8}')
    return (["convert-reference", weights, "--config", config, "--out", b.tmp / "conv"],
            error("convert-reference", "w.safetensors", "cannot read weights"))


@case
def convert_reference_with_weights_of_another_model(b: Bad):
    weights = b.file("w.safetensors", b"")
    save_file(load_file(str(b.run / "best" / "model.safetensors")), str(weights))  # msqnet keys, not the reference's
    config = b.file("ref.json", '{"timesformer_config": {}, "clip_vision_config": {}, "num_frames": 8}')
    return (["convert-reference", weights, "--config", config, "--out", b.tmp / "conv"],
            error("convert-reference", "reference weights", "query_embed"))


@case
def synth_into_a_path_that_is_a_file(b: Bad):
    target = b.file("taken.txt", "not a folder")
    return ["synth", target, "--clips", "2", "--test-clips", "1", "--no-progress"], error("synth", "taken.txt")


@case
def demo_with_an_invalid_override(b: Bad):
    return (["demo", "epochs=0", "--data-dir", b.tmp / "synth", "--out", b.tmp / "demo", "--no-progress"],
            error("demo", "epochs", ">= 1"))


@case
def presets_with_an_unknown_option(b: Bad):
    return ["presets", "--bogus"], error("presets", "unrecognized arguments: --bogus")


@case
def card_of_a_folder_that_is_not_a_checkpoint(b: Bad):
    return ["card", b.data / "videos"], error("card", "videos", "config.json")


@case
def card_that_is_not_utf8(b: Bad):
    model = b.model_copy()
    (model / "README.md").write_bytes("# mod\xe8le\n".encode("latin-1"))
    return ["card", model], error("card", "README.md:1", "not UTF-8")


@case
def push_to_a_repo_id_that_is_not_one(b: Bad):
    return ["push", b.run, "not a repo"], error("push", "'not a repo'", "expected a hub repo id")


@case
def push_while_offline(b: Bad):
    return ["push", b.run, "someone/msqnet-tiny"], error("push", "push to someone/msqnet-tiny")


@case
def app_with_an_infinite_window(b: Bad):
    return ["app", "--checkpoint", b.run, "--window", "inf"], error("app", "--window", "'inf'")


@case
def app_with_a_checkpoint_that_does_not_exist(b: Bad):
    return ["app", "--checkpoint", b.tmp / "nowhere", "--port", "0"], error("app", "nowhere", "not found")


# --- 2. non-finite settings ---------------------------------------------------------------------------


@case
def train_with_an_infinite_learning_rate(b: Bad):
    return ["train", b.config, "optim.lr=inf", b.out], error("train", "optim.lr", "finite")


@case
def train_with_a_nan_gradient_clip(b: Bad):
    return ["train", b.config, "clip_grad_norm=nan", b.out], error("train", "clip_grad_norm", "finite")


@case
def train_with_a_negative_weight_decay(b: Bad):
    return ["train", b.config, "optim.weight_decay=-1", b.out], error("train", "optim.weight_decay", ">= 0")


@case
def train_with_a_nan_warmup(b: Bad):
    return ["train", b.config, "schedule.warmup_epochs=.nan", b.out], error("train", "schedule.warmup_epochs", "finite")


@case
def train_with_zero_epochs(b: Bad):
    return ["train", b.config, "epochs=0", b.out], error("train", "epochs", ">= 1")


@case
def train_with_a_learning_rate_that_diverges(b: Bad):
    return (["train", b.config, "optim.lr=1e30", b.out, "--no-progress"],
            error("train", "non-finite loss", "optimiser step", "nonfinite: skip"))


@case
def train_with_a_diverging_learning_rate_under_nonfinite_skip(b: Bad):
    # Skipping cannot rescue weights that overflow: every later step is non-finite too.
    return (["train", b.config, "optim.lr=1e30", "nonfinite=skip", b.out, "--no-progress"],
            error("train", "NaN or infinite"))


@case
def predict_json_from_a_checkpoint_with_nan_weights(b: Bad):
    model = b.model_copy()
    weights = load_file(str(model / "model.safetensors"))
    name = next(k for k in weights if k.startswith("head."))
    weights[name][0] = float("nan")
    save_file(weights, str(model / "model.safetensors"))
    return (["predict", b.video(), "--checkpoint", model, "--format", "json", "--quiet"],
            error("predict", "model.safetensors", name, "NaN"))


@case
def predict_json_is_strict_json(b: Bad):
    return (["predict", b.video(), b.video(index=1), "--checkpoint", b.run, "--format", "json", "--quiet",
             "--window", "0.2"], handled(0, json_out=True))


@case
def score_predictions_holding_nan(b: Bad):
    preds = b.file("preds.csv", "id,class,score\ntest_seen_00000,walking,nan\n")
    return (["score", preds, "-g", b.data / "test_seen.csv", "--classes", b.data / "classes.json"],
            error("score", "preds.csv:2", "NaN"))


# --- 3. checkpoints that disagree with themselves -----------------------------------------------------


@case
def predict_with_config_sizes_that_disagree_with_the_weights(b: Bad):
    model = b.model_copy()
    edit_json(model / "config.json", lambda d: d["model"]["decoder"].update(dim_feedforward=48))
    return (["predict", b.video(), "--checkpoint", model, "--quiet"],
            error("predict", "model.safetensors", "has shape [32, 16]", "[48, 16]"))


@case
def predict_with_an_absurd_hidden_size_in_config(b: Bad):
    model = b.model_copy()
    edit_json(model / "config.json", lambda d: d["model"]["video_encoder"]["config"].update(hidden_size=2**20))
    return (["predict", b.video(), "--checkpoint", model, "--quiet"], error("predict", "model.safetensors", "shape"))


@case
def predict_with_an_absurd_image_size_in_config(b: Bad):
    model = b.model_copy()
    edit_json(model / "config.json", lambda d: d["model"].update(image_size=100_000))
    return (["predict", b.video(), "--checkpoint", model, "--quiet"],
            error("predict", "config.json", "image_size", "8..2048"))


@case
def predict_with_a_config_missing_text_dim(b: Bad):
    model = b.model_copy()
    edit_json(model / "config.json", lambda d: d.pop("text_dim"))
    return ["predict", b.video(), "--checkpoint", model, "--quiet"], error("predict", "config.json", "text_dim")


@case
def evaluate_with_a_classes_txt_that_lists_other_classes(b: Bad):
    model = b.model_copy()
    names = (model / "classes.txt").read_text(encoding="utf-8").splitlines()
    (model / "classes.txt").write_text("\n".join(names[:-1]) + "\n", encoding="utf-8")
    return (["evaluate", model, "--data", b.config, "--split", "test_seen", "--no-progress"],
            error("evaluate", "classes.txt", "disagrees", f"lists {len(names) - 1} classes"))


@case
def predict_without_classes_txt(b: Bad):
    model = b.model_copy()
    (model / "classes.txt").unlink()
    return ["predict", b.video(), "--checkpoint", model, "--quiet"], error("predict", "classes.txt", "missing")


@case
def predict_with_truncated_weights(b: Bad):
    model = b.model_copy()
    weights = model / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:5000])
    return (["predict", b.video(), "--checkpoint", model, "--quiet"],
            error("predict", "model.safetensors", "corrupt or truncated"))


@case
def resume_when_every_training_state_is_corrupt(b: Bad):
    run = b.run_copy()
    for name in ("last", "previous"):
        (run / "checkpoints" / name / "optimizer.safetensors").write_bytes(b"\0" * 64)
    return (["train", b.config, "--resume", "auto", f"output_dir={run}", "epochs=3"],
            error("train", "no valid training state", "optimizer.safetensors"))


@case
def resume_after_a_one_bit_edit_of_the_last_state_uses_the_previous_one(b: Bad):
    run = b.run_copy()
    doc = run / "checkpoints" / "last" / "trainer_state.json"
    data = bytearray(doc.read_bytes())
    at = data.index(b'"global_step": ') + len(b'"global_step": ')
    data[at] ^= 1  # 8 -> 9: a valid number, so only the checksum can tell
    doc.write_bytes(bytes(data))
    return (["train", b.config, "--resume", "auto", f"output_dir={run}", "epochs=3", "--no-progress"],
            handled(0, "trained 3 epoch(s)"))


@case
def resume_with_a_changed_model_config(b: Bad):
    run = b.run_copy()
    return (["train", b.config, "--resume", "auto", f"output_dir={run}", "epochs=3",
             "model_overrides=[decoder.dim_feedforward=48]"], error("train", "cannot resume", "model_overrides"))


# --- 4. video metadata --------------------------------------------------------------------------------


@case
def train_with_an_image_size_not_a_multiple_of_the_patch(b: Bad):
    return (["train", b.config, "model_overrides=[image_size=36]", "transform.size=36", b.out],
            error("train", "image_size (36)", "patch_size (8)"))


@case
def predict_a_frame_folder_of_mixed_image_sizes(b: Bad):
    folder = b.tmp / "frames"
    folder.mkdir()
    for i, size in enumerate([(40, 30), (40, 30), (30, 40), (40, 30)]):
        Image.new("RGB", size, (i * 40, 90, 200)).save(folder / f"{i:03d}.png")
    return (["predict", folder, b.video(), "--checkpoint", b.run, "--format", "json", "--quiet"],
            handled(1, "002.png", "differs from the folder's first frame", json_out=True))


@case
def predict_a_clip_shorter_than_the_model_frames(b: Bad):
    folder = b.tmp / "two_frames"  # T=4: the 2 frames repeat in order
    folder.mkdir()
    for i in range(2):
        Image.new("RGB", (40, 30), (i * 100, 90, 200)).save(folder / f"{i:03d}.png")
    return ["predict", folder, "--checkpoint", b.run, "--format", "json", "--quiet"], handled(0, json_out=True)


# --- 5. errors that named nothing ---------------------------------------------------------------------


@case
def train_with_a_config_that_is_not_utf8(b: Bad):
    config = b.file("latin1.yaml", "model: msqnet-lite\n# r\xe9sum\xe9\n".encode("latin-1"))
    return ["train", config], error("train", "latin1.yaml:2", "not UTF-8")


@case
def evaluate_with_a_zero_shot_split_file_that_is_not_an_object(b: Bad):
    split = b.file("split.json", '["walking", "running"]')
    return (["evaluate", b.run, "--data", b.config, "--split", "test_seen", "--zero-shot", split, "--no-progress"],
            error("evaluate", "split.json", "expected a JSON object"))


@case
def evaluate_with_zero_test_clips(b: Bad):
    return ["evaluate", b.run, "--data", b.config, "--test-clips", "0"], error("evaluate", "--test-clips", ">= 1")


@case
def data_check_an_annotation_file_that_is_not_utf8(b: Bad):
    text = (b.data / "train.csv").read_bytes().replace(b"sky/", b"sk\xff/", 1)
    ann = b.annotations(text)
    return (["data", "check", "--format", "generic", "--annotations", ann, "--root", b.data, "--split", "train",
             "--no-decode"], handled(1, "train.csv:2", "not UTF-8"))


@case
def data_check_a_garbage_number_in_a_metadata_column(b: Bad):
    rows = b.train_rows()
    rows[0].append("fps")
    for i, row in enumerate(rows[1:]):
        row.append("abc" if i == 2 else "24")
    ann = b.annotations(b.csv_text(rows))
    return (["data", "check", "--format", "generic", "--annotations", ann, "--root", b.data, "--split", "train",
             "--json"], handled(1, '"line": 4', "column fps is 'abc'", '"num_clips": 15', json_out=True))


@case
def score_with_a_bom_in_the_class_list(b: Bad):
    names = [c["name"] for c in json.loads((b.data / "classes.json").read_text(encoding="utf-8"))]
    classes = b.file("classes.txt", "\ufeff" + "\n".join(names) + "\n")
    preds = b.file("preds.csv", "id,class,score\ntest_seen_00000,walking,0.9\ntest_seen_00001,walking,0.1\n")
    return (["score", preds, "-g", b.data / "test_seen.csv", "--classes", classes, "--json"],
            handled(0, '"classes": 15', json_out=True))


@case
def predict_with_batch_size_zero(b: Bad):
    return ["predict", b.video(), "--checkpoint", b.run, "--batch-size", "0"], error("predict", "--batch-size", ">= 1")


@case
def evaluate_with_batch_size_zero(b: Bad):
    return (["evaluate", b.run, "--data", b.config, "--batch-size", "0"],
            error("evaluate", "--batch-size", ">= 1"))


@case
def score_with_batch_size_zero(b: Bad):
    return (["score", b.data / "test_seen.csv", "-g", b.data / "test_seen.csv", "--batch-size", "0"],
            error("score", "--batch-size", ">= 1"))


@case
def train_with_overrides_after_the_options(b: Bad):
    run = b.run_copy()
    return (["train", b.config, "--resume", "auto", "--no-progress", f"output_dir={run}", "epochs=3"],
            handled(0, "trained 3 epoch(s)"))


@case
def train_with_an_unknown_option_after_the_overrides(b: Bad):
    return (["train", b.config, "epochs=1", b.out, "--resume-from", "auto"],
            error("train", "unrecognized arguments: --resume-from auto"))


@case
def predict_with_a_labels_file_that_is_not_utf8(b: Bad):
    labels = b.file("labels.txt", "walking\nr\xe9sum\xe9\n".encode("latin-1"))
    return (["predict", b.video(), "--checkpoint", b.run, "--labels-file", labels],
            error("predict", "labels.txt:2", "not UTF-8"))


# --- the data issue's bad datasets --------------------------------------------------------------------


@case
def train_with_a_missing_video(b: Bad):
    rows = b.train_rows()
    rows[3][1] = "videos/gone.mp4"
    ann = b.annotations(b.csv_text(rows))
    return (["train", b.config, f"data.annotations={ann}", f"data.root={b.data}", b.out, "--no-progress"],
            error("train", "gone.mp4"))


@case
def train_with_a_label_id_out_of_range(b: Bad):
    rows = b.train_rows()
    rows[1][2] = "99"
    ann = b.annotations(b.csv_text(rows))
    return (["train", b.config, f"data.annotations={ann}", f"data.root={b.data}", b.out],
            error("train", "train.csv:2", "unknown class id 99"))


@case
def data_check_a_label_id_out_of_range(b: Bad):
    rows = b.train_rows()
    rows[1][2] = "99"
    ann = b.annotations(b.csv_text(rows))
    return (["data", "check", "--format", "generic", "--annotations", ann, "--root", b.data, "--split", "train",
             "--no-decode"], handled(1, "train.csv:2", "unknown class id 99", "FAILED: 1 problem(s)"))


@case
def train_with_an_empty_annotation_file(b: Bad):
    ann = b.annotations("")
    return (["train", b.config, f"data.annotations={ann}", f"data.root={b.data}", b.out],
            error("train", "train.csv", "empty"))


@case
def data_check_an_empty_annotation_file(b: Bad):
    ann = b.annotations("")
    return (["data", "check", "--format", "generic", "--annotations", ann, "--root", b.data, "--split", "train"],
            handled(1, "train.csv", "empty"))


@case
def train_with_an_unknown_config_key(b: Bad):
    return ["train", b.config, "optim.lrr=0.1", b.out], error("train", "optim.lrr", "unknown key")


@case
def evaluate_with_an_unknown_data_key(b: Bad):
    return (["evaluate", b.run, "--data", b.config, "--set", "data.bogus=1"],
            error("evaluate", "data.bogus", "unknown key"))


@case
def data_check_a_nan_segment_start(b: Bad):
    rows = b.train_rows()
    rows[0].append("start")
    for i, row in enumerate(rows[1:]):
        row.append("nan" if i == 0 else "")
    ann = b.annotations(b.csv_text(rows))
    return (["data", "check", "--format", "generic", "--annotations", ann, "--root", b.data, "--split", "train",
             "--no-decode"], handled(1, "train.csv:2", "bad start 'nan'"))


@case
def synth_with_a_nan_probability(b: Bad):
    return (["synth", b.tmp / "s", "--moving-background", "nan", "--no-progress"],
            error("synth", "moving_background", "finite"))


@case
def synth_with_zero_clips(b: Bad):
    return ["synth", b.tmp / "s", "--clips", "0", "--no-progress"], error("synth", "clips")


@case
def predict_onnxruntime_with_a_truncated_onnx_file(b: Bad):
    onnx_file = b.file("model.onnx", b"\x08\x07\x12\x07pytorch" + bytes(200))
    return (["predict", b.video(), "--checkpoint", onnx_file, "--backend", "onnxruntime", "--quiet"],
            error("predict", "model.onnx", "not a readable ONNX file"))


@case
def predict_onnxruntime_with_an_onnx_file_not_from_msqnet(b: Bad):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    onnx_file = b.tmp / "other.onnx"
    onnx.save(helper.make_model(graph), str(onnx_file))
    return (["predict", b.video(), "--checkpoint", onnx_file, "--backend", "onnxruntime", "--quiet"],
            error("predict", "other.onnx", "not an ONNX file exported by msqnet"))


@case
def export_to_onnx_from_a_missing_checkpoint(b: Bad):
    return (["export", b.tmp / "nowhere", "--format", "onnx", "--out", b.tmp / "m.onnx"],
            error("export", "nowhere"))


# --- the table, run -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input(name: str, tmp_path: Path, data_dir: Path, train_config: Path, trained_run: Path) -> None:
    argv, expected = CASES[name](Bad(tmp_path, data_dir, train_config, trained_run))
    expected.check(run_msqnet(*argv))
