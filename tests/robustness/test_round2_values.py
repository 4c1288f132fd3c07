"""Reliability round 2, classes 5-8 (issue 23): bounded messages, user errors that are not internal ones,
numbers that are right or refused, and settings that round-trip or are refused.

Each test is one rule, stated where the code enforces it: ``utils.quote`` (excerpts of users' values),
``config_loader.parse_yaml`` / ``parse_json`` (duplicate keys, alias expansion), ``check_class_names``,
``check_clips``, ``check_weight_kinds``, ``utils.WriteError`` (failed writes name the destination),
the frozen cache's data checksum, ``export.supported_opsets`` and ``cli.predict.timeline_paths``.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from msqnet import create_model, load_model, save_model
from msqnet.config_loader import MAX_YAML_VALUES
from msqnet.data.decode import read_frames
from msqnet.engine.frozen_cache import FrozenFrameCache
from msqnet.utils import QUOTE_LIMIT, quote

from ..engine.conftest import REPO
from ..models.tiny import tiny_config
from .conftest import assert_clean_error, best_model_copy, run_copy, run_msqnet

# A message quoting a value is one line of a few hundred characters at most, whatever the value.
SHORT_LINE = 600


def _bomb(levels: int = 9) -> str:
    """A YAML "billion laughs" as one flow value: ``levels`` lists of 9 aliases of the list before (9**levels
    values in about 700 bytes)."""
    items = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    items += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, levels + 1)]
    return "{" + ", ".join(items) + "}"


def _config_with(train_config: Path, tmp_path: Path, key: str, text: str, name: str = "bad.yaml") -> Path:
    """The session training config with top-level ``key`` given as the YAML ``text`` (after the other keys)."""
    import yaml

    data = {k: v for k, v in yaml.safe_load(train_config.read_text()).items() if k != key}
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False) + f"{key}: {text}\n")
    return path


def _one_video(data_dir: Path) -> Path:
    return sorted((data_dir / "videos").rglob("*.mp4"))[0]


def _run_with_file_size_limit(limit: int, code: str) -> subprocess.CompletedProcess:
    """Run Python ``code`` in a fresh process whose writes stop at ``limit`` bytes per file (RLIMIT_FSIZE: the
    kernel's own "file too large", as a full disk fails a write), msqnet importable as in this process."""
    import msqnet

    prelude = ("import resource, signal\n"
               "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failed write, not a killed process\n"
               f"resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))\n")
    src = str(Path(msqnet.__file__).parents[1])
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]), "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([sys.executable, "-c", prelude + code], capture_output=True, text=True, env=env,
                          timeout=300, cwd=REPO)


def _tree_bytes(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# --- 5. unbounded error messages ---------------------------------------------------------------------


def test_quote_cuts_a_long_value_to_a_short_excerpt():
    text = quote("x" * 10_000_000)
    assert len(text) <= QUOTE_LIMIT and text.startswith("'xxx") and "..." in text


def test_quote_does_not_expand_a_deeply_shared_value():
    value: list = ["x"] * 9
    for _ in range(12):  # 9**13 items if expanded
        value = [value] * 9
    assert len(quote(value)) <= QUOTE_LIMIT


def test_a_yaml_alias_bomb_is_refused_in_one_short_line(train_config: Path, tmp_path: Path):
    config = _config_with(train_config, tmp_path, "epochs", _bomb())
    assert len(_bomb()) < 800
    line = assert_clean_error(run_msqnet("train", config, f"output_dir={tmp_path / 'run'}"), "train",
                              "bad.yaml", "aliases expand", str(MAX_YAML_VALUES))
    assert len(line) < SHORT_LINE


def test_a_value_that_contains_itself_is_refused(train_config: Path, tmp_path: Path):
    config = _config_with(train_config, tmp_path, "metrics", "&m [map, *m]")
    assert_clean_error(run_msqnet("train", config), "train", "bad.yaml", "contains it")


def test_a_10_mb_value_is_quoted_as_an_excerpt(train_config: Path, tmp_path: Path):
    config = _config_with(train_config, tmp_path, "device", "x" * 10_000_000)
    line = assert_clean_error(run_msqnet("train", config), "train", "bad.yaml", "device", "xxx...xxx")
    assert len(line) < SHORT_LINE


def test_a_10_mb_model_name_is_quoted_as_an_excerpt(train_config: Path, tmp_path: Path):
    config = _config_with(train_config, tmp_path, "model", "x" * 10_000_000)
    line = assert_clean_error(run_msqnet("train", config), "train", "bad.yaml", "neither a model preset")
    assert len(line) < SHORT_LINE


def test_an_alias_bomb_in_an_override_is_refused(train_config: Path):
    line = assert_clean_error(run_msqnet("train", train_config, f"optim={_bomb(6)}"), "train", "override",
                              "aliases expand")
    assert len(line) < SHORT_LINE


# --- 6. internal errors on user input ----------------------------------------------------------------


def test_app_refuses_a_port_out_of_range_as_a_user_error(tmp_path: Path):
    result = run_msqnet("app", "--checkpoint", tmp_path / "none", "--port", "99999")
    assert result.code == 2 and "internal error" not in result.err
    assert "argument --port: expected a port 0..65535, got '99999'" in result.err


def test_app_blames_the_host_not_the_port_for_an_address_that_does_not_resolve(tmp_path: Path):
    line = assert_clean_error(run_msqnet("app", "--checkpoint", tmp_path / "none", "--host", "999.1.1.1"), "app",
                              "--host 999.1.1.1")
    assert "--port" not in line and "port" not in line.split("--host", 1)[1]


def test_a_full_disk_while_saving_a_checkpoint_names_the_folder_and_keeps_the_previous_one(trained_run: Path,
                                                                                        tmp_path: Path):
    folder = best_model_copy(trained_run, tmp_path / "model")
    before = _tree_bytes(folder)
    code = ("import msqnet\n"
            "from msqnet.cli import _anticipated, describe_error\n"
            f"model = msqnet.load_model({str(folder)!r})\n"
            "try:\n"
            f"    msqnet.save_model(model, {str(folder)!r})\n"
            "except Exception as e:\n"
            "    print('anticipated' if _anticipated(e) else 'internal', type(e).__name__)\n"
            "    print(describe_error(e))\n")
    done = _run_with_file_size_limit(4096, code)
    assert done.returncode == 0, done.stderr
    kind, message = done.stdout.strip().splitlines()[-2:]
    assert kind == "anticipated WriteError", done.stdout
    assert message.startswith(f"{folder}: file too large while writing it; nothing there was replaced"), message
    assert ".tmp" not in message
    assert _tree_bytes(folder) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no staging folder left behind


# --- 7. silently wrong numbers -----------------------------------------------------------------------


def test_16_bit_grayscale_png_frames_are_scaled_not_saturated(tmp_path: Path):
    folder = tmp_path / "frames16"
    folder.mkdir()
    for i in range(4):
        Image.fromarray(np.full((32, 32), 125 * 257, dtype=np.uint16)).save(folder / f"{i:05d}.png")
    assert Image.open(folder / "00000.png").mode.startswith("I")  # really a 16-bit image
    frames = read_frames(folder, [0, 3])
    assert frames.dtype == torch.uint8 and frames.float().mean().item() == 125.0


@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(0)
    return create_model(tiny_config("timesformer"), ["walking", "running", "eating"])


@pytest.mark.parametrize("make, culprit", [
    (lambda x: x * 255, "expected [0, 1] (0..255 pixels: divide by 255"),
    (lambda x: torch.where(x > 0.5, torch.nan, x), "NaN or infinite"),
    (lambda x: (x * 255).long(), "dtype int64"),
    (lambda x: x[:, :2], "shape [4, 2, 32, 32]"),
    (lambda x: x[:3], "T=4 frames"),
], ids=["0-255 floats", "NaN", "int64", "two channels", "three frames"])
def test_model_predict_refuses_a_clip_tensor_it_would_score_wrong(tiny_model, make, culprit):
    clip = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="<tensor>: ") as e:
        tiny_model.predict(make(clip))
    assert culprit in str(e.value)


def test_model_predict_scores_uint8_and_unit_float_clips_alike(tiny_model):
    clip = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    as_uint8 = tiny_model.predict(clip, precision="fp32").probabilities
    as_float = tiny_model.predict(clip.float() / 255, precision="fp32").probabilities
    np.testing.assert_allclose(as_uint8, as_float, atol=1e-6)


def test_create_model_refuses_duplicate_class_names():
    with pytest.raises(ValueError, match="class 2 'walking' duplicates class 0; expected unique names"):
        create_model(tiny_config("timesformer"), ["walking", "running", "walking"])


def test_save_model_refuses_class_names_made_duplicate_after_creation(tiny_model, tmp_path: Path):
    model = create_model(tiny_config("timesformer"), ["walking", "running", "eating"])
    model.class_names = ["walking", "running", "running"]
    with pytest.raises(ValueError, match="duplicates class 1"):
        save_model(model, tmp_path / "ckpt")
    assert not (tmp_path / "ckpt").exists()


def test_predict_refuses_a_repeated_label_instead_of_collapsing_it(tiny_model):
    clip = torch.rand(4, 3, 32, 32)
    with pytest.raises(ValueError, match="labels: class 1 'walking' duplicates class 0"):
        tiny_model.predict(clip, ["walking", "walking", "eating"])


def test_convert_reference_refuses_duplicate_class_names(shared_dir: Path, tmp_path: Path):
    fixtures = shared_dir / "fixtures" / "reference_parity"
    config = json.loads((fixtures / "config.json").read_text())
    config["classes"][2] = config["classes"][1]
    (tmp_path / "dup.json").write_text(json.dumps(config))
    result = run_msqnet("convert-reference", fixtures / "official_model.safetensors", "--config",
                        tmp_path / "dup.json", "--out", tmp_path / "out")
    assert_clean_error(result, "convert-reference", "dup.json: classes", "duplicates class 1")
    assert not (tmp_path / "out").exists()


def test_float_weights_stored_as_int64_are_refused_naming_the_tensor(trained_run: Path, data_dir: Path,
                                                                     tmp_path: Path):
    folder = best_model_copy(trained_run, tmp_path / "model")
    weights = load_file(str(folder / "model.safetensors"))
    name = next(k for k, v in weights.items() if v.is_floating_point() and v.ndim == 2)
    weights[name] = weights[name].round().to(torch.int64)
    save_file(weights, str(folder / "model.safetensors"))
    result = run_msqnet("predict", _one_video(data_dir), "--checkpoint", folder, "--quiet")
    assert_clean_error(result, "predict", "model.safetensors", f"tensor {name} is stored as int64",
                       "floating-point")


def _saved_cache(path: Path) -> FrozenFrameCache:
    cache = FrozenFrameCache(features=torch.randn(3, 4, 2, 2, 2).half(), visual=None,
                             valid=torch.tensor([True, True, False]), frames=4, train=True, fingerprint="f" * 64)
    cache.save(path)
    return cache


def test_a_frozen_cache_reads_back_what_it_saved(tmp_path: Path):
    cache = _saved_cache(tmp_path / "train.safetensors")
    loaded = FrozenFrameCache.load(tmp_path / "train.safetensors", "f" * 64)
    assert loaded is not None and torch.equal(loaded.features, cache.features)


def test_a_frozen_cache_with_damaged_data_bytes_is_rebuilt_with_a_warning(tmp_path: Path, caplog):
    path = tmp_path / "train.safetensors"
    _saved_cache(path)
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF  # a flipped byte in the tensor data; the header still parses
    path.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING):
        assert FrozenFrameCache.load(path, "f" * 64) is None  # None: the caller rebuilds it
    assert "fail their checksum" in caplog.text and str(path) in caplog.text and "rebuilding" in caplog.text


def test_timelines_of_inputs_sharing_a_file_name_do_not_overwrite_each_other(trained_run: Path, data_dir: Path,
                                                                            tmp_path: Path):
    video = _one_video(data_dir)
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        shutil.copy(video, tmp_path / sub / "clip.mp4")
    result = run_msqnet("predict", tmp_path / "a" / "clip.mp4", tmp_path / "b" / "clip.mp4", "--checkpoint",
                        trained_run, "--window", "0.5", "--timeline", tmp_path / "png", "--out",
                        tmp_path / "p.json", "--quiet")
    assert result.code == 0, result.err
    assert sorted(p.name for p in (tmp_path / "png").iterdir()) == ["clip.mp4-2.timeline.png", "clip.mp4.timeline.png"]
    assert f"wrote {tmp_path / 'png' / 'clip.mp4-2.timeline.png'}" in result.err


@pytest.mark.parametrize("opset", ["0", "-1", "7", "99"])
def test_export_refuses_an_opset_outside_the_exporters_range(trained_run: Path, tmp_path: Path, opset: str):
    pytest.importorskip("onnxscript")
    result = run_msqnet("export", trained_run, "--out", tmp_path / "m.onnx", "--opset", opset)
    assert_clean_error(result, "export", f"--opset {opset}", "expected an ONNX opset 18..")
    assert not (tmp_path / "m.onnx").exists()


def test_export_writes_the_opset_asked_for(tmp_path: Path):
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")
    from msqnet.inference.export import export_onnx, supported_opsets

    torch.manual_seed(0)
    model = create_model(tiny_config("timesformer"), ["walking", "running"])
    default = supported_opsets().start + 1  # torch's default is 20: ask for another one
    path = export_onnx(model, tmp_path / "m.onnx", opset=supported_opsets().start)
    opsets = {o.domain: o.version for o in onnx.load(str(path)).opset_import}
    assert opsets[""] == supported_opsets().start != default


# --- 8. round trips and messages ---------------------------------------------------------------------


@pytest.mark.parametrize("name, culprit", [
    ("walking ", "has surrounding whitespace"),
    (" walking", "has surrounding whitespace"),
    ("walk\ning", "line break"),
    ("", "expected a non-empty name"),
])
def test_class_names_that_would_not_load_back_are_refused_at_creation(name, culprit):
    with pytest.raises(ValueError, match=culprit):
        create_model(tiny_config("timesformer"), ["running", name])


def test_a_checkpoint_round_trips_its_class_names(tmp_path: Path):
    names = ["walking", "riding a bicycle", "naïve café", "a/b, c"]
    model = load_model(save_model(create_model(tiny_config("timesformer"), names), tmp_path / "ckpt"))
    assert model.class_names == names


def test_a_key_given_twice_in_a_yaml_config_is_refused_naming_key_file_and_lines(train_config: Path, tmp_path: Path):
    config = _config_with(train_config, tmp_path, "epochs", "3\nepochs: 4")
    first = len(config.read_text().splitlines()) - 1
    assert_clean_error(run_msqnet("train", config), "train", f"bad.yaml:{first + 1}", "key 'epochs' given twice",
                       f"first on line {first}")


def test_a_key_given_twice_in_a_json_config_is_refused_naming_key_and_file(train_config: Path, tmp_path: Path):
    import yaml

    text = json.dumps(yaml.safe_load(train_config.read_text()))
    config = tmp_path / "bad.json"
    config.write_text(text[:-1] + ', "seed": 1, "seed": 2}')
    assert_clean_error(run_msqnet("train", config), "train", "bad.json", "key 'seed' given twice")


def test_a_yaml_merge_key_may_still_override_what_it_merges(tmp_path: Path):
    from msqnet.config_loader import read_config_file

    path = tmp_path / "merge.yaml"
    path.write_text("base: &b {lr: 1, wd: 2}\noptim:\n  <<: *b\n  lr: 3\n")
    assert read_config_file(path)["optim"] == {"lr": 3, "wd": 2}


def test_a_negative_seed_names_the_key_and_the_file(train_config: Path):
    assert_clean_error(run_msqnet("train", train_config, "seed=-1"), "train", "train.yaml", "seed:",
                       "0..4294967295")


def test_out_onto_a_folder_names_the_folder_not_a_temporary_file(trained_run: Path, data_dir: Path, tmp_path: Path):
    (tmp_path / "taken.json").mkdir()
    result = run_msqnet("predict", _one_video(data_dir), "--checkpoint", trained_run, "--out",
                        tmp_path / "taken.json", "--quiet")
    line = assert_clean_error(result, "predict", f"{tmp_path / 'taken.json'}: is a folder")
    assert ".tmp" not in line


def test_out_of_space_in_predict_names_the_output_file(trained_run: Path, data_dir: Path, tmp_path: Path):
    out = tmp_path / "preds.json"
    argv = ["predict", str(_one_video(data_dir)), "--checkpoint", str(trained_run), "--out", str(out), "--quiet",
            "--num-workers", "0"]
    code = f"import sys\nfrom msqnet.cli import main\nsys.exit(main({argv!r}))\n"
    done = _run_with_file_size_limit(64, code)
    assert done.returncode == 2, done.stderr
    [line] = [x for x in done.stderr.splitlines() if ": error:" in x]
    assert line == f"msqnet predict: error: {out}: file too large while writing it; nothing there was replaced"
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_out_of_space_in_archive_prediction_names_the_output_file(trained_run: Path, data_dir: Path, tmp_path: Path):
    out = tmp_path / "preds.jsonl"
    argv = ["predict", str(_one_video(data_dir)), "--checkpoint", str(trained_run), "--out", str(out), "--quiet",
            "--num-workers", "0"]
    done = _run_with_file_size_limit(64, f"import sys\nfrom msqnet.cli import main\nsys.exit(main({argv!r}))\n")
    assert done.returncode == 2, done.stderr
    [line] = [x for x in done.stderr.splitlines() if ": error:" in x]
    assert line.startswith(f"msqnet predict: error: {out}: file too large while appending to it; the lines before stay")


def test_synth_refuses_a_size_beyond_its_bound_up_front(tmp_path: Path):
    result = run_msqnet("synth", tmp_path / "s", "--size", "100000", "--clips", "2", "--no-progress")
    line = assert_clean_error(result, "synth", "size", "32..2048", "100000")
    assert "batch_size" not in line and not (tmp_path / "s").exists()


def test_timeline_without_window_under_view_whole_is_refused(trained_run: Path, data_dir: Path, tmp_path: Path):
    result = run_msqnet("predict", _one_video(data_dir), "--checkpoint", trained_run, "--view", "whole",
                        "--timeline", tmp_path)
    assert_clean_error(result, "predict", "--timeline needs --window")


def test_gzsl_without_zero_shot_is_refused(trained_run: Path, train_config: Path):
    result = run_msqnet("evaluate", trained_run, "--data", train_config, "--gzsl")
    assert_clean_error(result, "evaluate", "--gzsl needs --zero-shot")


def test_a_fold_on_generic_data_is_refused(train_config: Path):
    assert_clean_error(run_msqnet("train", train_config, "data.fold=2"), "train", "train.yaml", "data.fold",
                       "'generic' has no numbered splits")


def test_a_dangling_best_link_is_warned_about(trained_run: Path, data_dir: Path, tmp_path: Path, caplog):
    run = run_copy(trained_run, tmp_path / "run")
    (run / "best").unlink()
    os.symlink("models/epoch-999", run / "best")
    with caplog.at_level(logging.WARNING):
        result = run_msqnet("predict", _one_video(data_dir), "--checkpoint", run, "--quiet")
    assert result.code == 0, result.err
    assert f"{run / 'best'}: the link points at models/epoch-999, which is missing" in caplog.text
    assert "using its last training state" in caplog.text
