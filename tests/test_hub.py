"""Hub repo ids as checkpoints: loading from the hub cache (offline), revisions, folders first, and publishing.

The hub cache is laid out as ``huggingface_hub`` lays it out (``models--user--name/blobs``,
``snapshots/<commit>/`` links, ``refs/<branch>``) in a temporary folder; nothing uses the network.
Publishing goes through ``huggingface_hub``'s real upload API to a local stand-in of the hub
(``tests/hub_server.py``).
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

import msqnet
from msqnet.checkpoint import CHECKPOINT_FILES, CheckpointError, save_model
from msqnet.cli import main
from msqnet.checkpoint.hub import RepoRef, parse_repo_ref
from msqnet.models import create_model

from .hub_server import FakeHub
from .models.tiny import tiny_config

REPO_ROOT = Path(__file__).resolve().parents[1]
COMMIT_MAIN = "a" * 40
COMMIT_V1 = "b" * 40


def put_in_hub_cache(cache: Path, repo_id: str, folder: Path, commit: str, refs: tuple[str, ...]) -> Path:
    """Lay a checkpoint folder out in ``cache`` as the hub cache holds a downloaded snapshot."""
    repo_dir = cache / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo_dir / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (repo_dir / "blobs").mkdir(exist_ok=True)
    for name in CHECKPOINT_FILES:
        data = (folder / name).read_bytes()
        blob = repo_dir / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        (snapshot / name).symlink_to(os.path.relpath(blob, snapshot))
    (repo_dir / "refs").mkdir(exist_ok=True)
    for ref in refs:
        (repo_dir / "refs" / ref).write_text(commit)
    return snapshot


def _model(classes: list[str], seed: int):
    torch.manual_seed(seed)
    return create_model(tiny_config("effnet", head="text", trainable_label_embeddings=False), classes)


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    """Two different checkpoints: ``main`` (what the repo's main branch holds) and ``v1`` (an older tag)."""
    root = tmp_path_factory.mktemp("hub_src")
    return {"main": save_model(_model(["walking", "running", "eating"], 0), root / "main"),
            "v1": save_model(_model(["jumping", "waving"], 1), root / "v1")}


@pytest.fixture(scope="module")
def hub_cache(tmp_path_factory, folders) -> Path:
    """A hub cache holding ``me/msqnet-tiny`` at two commits: ``main`` and the tag ``v1``."""
    cache = tmp_path_factory.mktemp("hf_home") / "hub"
    put_in_hub_cache(cache, "me/msqnet-tiny", folders["main"], COMMIT_MAIN, ("main",))
    put_in_hub_cache(cache, "me/msqnet-tiny", folders["v1"], COMMIT_V1, ("v1",))
    return cache


def test_repo_ids_with_and_without_revision_parse():
    assert parse_repo_ref("me/msqnet-ak") == RepoRef("me/msqnet-ak", None)
    assert parse_repo_ref("me/msqnet-ak@v1.0") == RepoRef("me/msqnet-ak", "v1.0")
    assert parse_repo_ref(f"me/msqnet-ak@{COMMIT_V1}") == RepoRef("me/msqnet-ak", COMMIT_V1)


def test_paths_that_cannot_be_repo_ids_are_not_taken_for_one():
    for path in ("/abs/path", "./rel/path", "runs/demo/run", "msqnet-ak", "a--b/c", "me/msqnet@"):
        assert parse_repo_ref(path) is None, path


def test_a_repo_id_loads_from_the_hub_cache_offline(hub_cache, folders, shared_videos):
    model = msqnet.load_model("me/msqnet-tiny", cache_dir=hub_cache)
    reference = msqnet.load_model(folders["main"])
    video = shared_videos / "bikes.mp4"
    assert model.class_names == ["walking", "running", "eating"]
    assert torch.equal(torch.from_numpy(model.predict(video).probabilities),
                       torch.from_numpy(reference.predict(video).probabilities))


def test_a_revision_picks_that_snapshot(hub_cache):
    assert msqnet.load_model("me/msqnet-tiny@v1", cache_dir=hub_cache).class_names == ["jumping", "waving"]
    assert msqnet.load_model(f"me/msqnet-tiny@{COMMIT_V1}", cache_dir=hub_cache).class_names == ["jumping", "waving"]


def test_an_existing_folder_wins_over_a_repo_id(hub_cache, folders, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    save_model(msqnet.load_model(folders["v1"]), Path("me/msqnet-tiny"))  # a local folder named like the repo
    assert msqnet.load_model("me/msqnet-tiny", cache_dir=hub_cache).class_names == ["jumping", "waving"]


def test_a_missing_folder_that_is_no_cached_repo_names_both_readings(hub_cache):
    with pytest.raises(CheckpointError) as err:
        msqnet.load_model("me/not-there", cache_dir=hub_cache)
    message = str(err.value)
    assert "me/not-there: no such local folder" in message
    assert "hub repo me/not-there: not in the local hub cache and offline mode (HF_HUB_OFFLINE=1)" in message


def test_an_unknown_revision_of_a_cached_repo_is_an_error(hub_cache):
    with pytest.raises(CheckpointError, match="hub repo me/msqnet-tiny@v9: not in the local hub cache"):
        msqnet.load_model("me/msqnet-tiny@v9", cache_dir=hub_cache)


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    code = "import sys; from msqnet.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120,
                          cwd=REPO_ROOT, env={**os.environ, "OMP_NUM_THREADS": "1", **env})


def test_predict_checkpoint_takes_a_repo_id_through_hf_hub_cache(hub_cache, folders, shared_videos):
    video = shared_videos / "bikes.mp4"
    r = _cli("predict", str(video), "--checkpoint", "me/msqnet-tiny@v1", "--format", "json", "--quiet",
             "--precision", "fp32", env={"HF_HUB_CACHE": str(hub_cache), "HF_HUB_OFFLINE": "1"})
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)[0]["probabilities"]
    expected = msqnet.load_model(folders["v1"]).predict(video, precision="fp32")  # exact: no bf16 rounding
    assert got == pytest.approx(dict(zip(expected.labels, expected.probabilities.tolist())), abs=1e-6)


@pytest.fixture()
def fake_hub():
    with FakeHub() as hub:
        yield hub


def _online_env(hub: FakeHub, tmp_path: Path) -> dict[str, str]:
    """The environment of a user logged in to the (stand-in) hub."""
    return {"HF_ENDPOINT": hub.url, "HF_HUB_OFFLINE": "0", "TRANSFORMERS_OFFLINE": "0", "HF_TOKEN": "hf_test_token",
            "HF_HOME": str(tmp_path / "hf_home")}


def test_push_publishes_the_model_files_and_card_but_no_frozen_weights(fake_hub, folders, tmp_path):
    r = _cli("push", str(folders["main"]), "me/msqnet-tiny", "--revision", "v2", env=_online_env(fake_hub, tmp_path))
    assert r.returncode == 0, r.stderr
    assert "pushed" in r.stdout and "me/msqnet-tiny" in r.stdout
    pushed = fake_hub.files[("me/msqnet-tiny", "v2")]
    assert sorted(pushed) == sorted(CHECKPOINT_FILES)
    for name in ("config.json", "model.safetensors", "classes.txt"):
        assert pushed[name] == (folders["main"] / name).read_bytes()
    weights = tmp_path / "pushed.safetensors"
    weights.write_bytes(pushed["model.safetensors"])
    assert not [k for k in load_file(str(weights)) if k.startswith("visual_embedder.")]  # stored by reference
    card = pushed["README.md"].decode()
    assert 'msqnet.load_model("me/msqnet-tiny")' in card  # the usage lines name the repo


def test_save_model_push_to_hub_publishes_what_it_saved(fake_hub, tmp_path):
    code = ("import torch, msqnet; from tests.models.tiny import tiny_config; torch.manual_seed(0); "
            "m = msqnet.create_model(tiny_config('effnet'), ['walking', 'eating']); "
            f"msqnet.save_model(m, {str(tmp_path / 'ckpt')!r}, push_to_hub='me/pushed')")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO_ROOT,
                       env={**os.environ, "OMP_NUM_THREADS": "1", **_online_env(fake_hub, tmp_path)})
    assert r.returncode == 0, r.stderr
    pushed = fake_hub.files[("me/pushed", "main")]
    assert pushed["model.safetensors"] == (tmp_path / "ckpt" / "model.safetensors").read_bytes()
    meta = yaml.safe_load(pushed["README.md"].decode().split("---")[1])
    assert meta["library_name"] == "msqnet" and meta["pipeline_tag"] == "video-classification"


def test_push_refuses_a_folder_that_is_not_a_checkpoint(tmp_path, capsys):
    assert main(["push", str(tmp_path), "me/msqnet-tiny"]) == 2
    assert f"{tmp_path / 'config.json'}: missing" in capsys.readouterr().err


def test_push_offline_is_a_one_line_error(folders, capsys):
    assert main(["push", str(folders["main"]), "me/msqnet-tiny"]) == 2  # the suite runs with HF_HUB_OFFLINE=1
    err = capsys.readouterr().err
    assert err.startswith("msqnet push: error: push to me/msqnet-tiny: OfflineModeIsEnabled") and err.count("\n") == 1
