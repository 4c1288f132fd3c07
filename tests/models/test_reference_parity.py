"""Reference parity: converted reference weights reproduce the reference implementation's logits."""
from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

import msqnet
from msqnet.cli import main


@pytest.fixture(scope="module")
def fixture_dir(shared_dir):
    return shared_dir / "fixtures" / "reference_parity"


@pytest.fixture(scope="module")
def converted(fixture_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("parity") / "ckpt"
    rc = main(["convert-reference", str(fixture_dir / "official_model.safetensors"),
               "--config", str(fixture_dir / "config.json"), "--out", str(out)])
    assert rc == 0
    return out


def test_converted_reference_matches_reference_logits(converted, fixture_dir):
    io = load_file(str(fixture_dir / "io.safetensors"))
    model = msqnet.load_model(converted)
    with torch.no_grad():
        logits = model(io["input"]).logits
    assert logits.shape == io["logits"].shape == (2, 5)
    assert (logits - io["logits"]).abs().max().item() < 1e-5


def test_parity_is_a_mode_not_the_default(converted):
    cfg = msqnet.load_model(converted).cfg
    assert cfg.pooling == "reference" and cfg.video_encoder.mean is None and cfg.visual_embedder.mean is None
    assert cfg.attention == "eager"  # the reference's explicit attention arithmetic
    default = msqnet.get_model_config("msqnet-b16")
    assert default.pooling == "temporal" and default.video_encoder.mean is not None and default.attention == "auto"


def test_converter_rejects_foreign_weights(tmp_path, fixture_dir):
    from safetensors.torch import save_file

    state = load_file(str(fixture_dir / "official_model.safetensors"))
    state["extra_head.weight"] = torch.zeros(2)
    save_file(state, str(tmp_path / "w.safetensors"))
    rc = main(["convert-reference", str(tmp_path / "w.safetensors"), "--config", str(fixture_dir / "config.json"),
               "--out", str(tmp_path / "out")])
    assert rc == 2 and not (tmp_path / "out").exists()
