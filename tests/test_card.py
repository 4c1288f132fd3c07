"""Model cards: every saved checkpoint carries a README.md with the hub's metadata and what a user needs."""
from __future__ import annotations

import shutil

import pytest
import torch
import yaml

from msqnet.checkpoint.card import latest_evaluation, model_card
from msqnet.checkpoint import read_checkpoint_config, save_model
from msqnet.cli import main
from msqnet.models import create_model

from .models.tiny import tiny_config

CLASSES = ["walking", "riding a bicycle", "eating"]


def front_matter(card: str) -> dict:
    """The YAML metadata block of a card (between the first two ``---`` lines)."""
    assert card.startswith("---\n")
    return yaml.safe_load(card.split("\n---\n", 1)[0][4:])


@pytest.fixture(scope="module")
def open_ckpt(tmp_path_factory):
    torch.manual_seed(0)
    model = create_model(tiny_config("effnet", head="text", trainable_label_embeddings=False), CLASSES)
    return save_model(model, tmp_path_factory.mktemp("card") / "open")


def test_save_model_writes_a_card_with_the_hub_metadata(open_ckpt):
    meta = front_matter((open_ckpt / "README.md").read_text())
    assert meta["library_name"] == "msqnet" and meta["pipeline_tag"] == "video-classification"
    assert meta["license"] == "apache-2.0"
    assert {"msqnet", "open-vocabulary", "multi-label", "tiny-effnet"} <= set(meta["tags"])
    assert "model-index" not in meta  # nothing measured, nothing claimed


def test_a_card_lists_the_labels_test_view_and_how_to_load(open_ckpt):
    card = (open_ckpt / "README.md").read_text()
    assert "3 classes, in score order (`classes.txt`): `walking`, `riding a bicycle`, `eating`." in card
    assert "The middle frame of each of 4 equal segments (tsn)" in card and "centre crop of 32 px" in card
    assert "No training record" in card and "Not evaluated" in card
    assert 'msqnet.load_model("path/to/this/folder")' in card
    assert "stored by reference" in card and "`visual_embedder`" in card


def test_a_closed_set_card_says_it_scores_only_its_classes(tmp_path):
    ckpt = save_model(create_model(tiny_config("effnet"), CLASSES), tmp_path / "closed")
    card = (ckpt / "README.md").read_text()
    assert "closed-set" in front_matter(card)["tags"]
    assert "closed set, scores only the classes below" in card and "--labels" not in card


def test_msqnet_card_prints_the_checkpoint_card(open_ckpt, capsys):
    assert main(["card", str(open_ckpt)]) == 0
    assert capsys.readouterr().out == (open_ckpt / "README.md").read_text()


def test_a_checkpoint_without_a_card_gets_one_from_its_config(open_ckpt, tmp_path, capsys):
    old = tmp_path / "old"
    shutil.copytree(open_ckpt, old)
    (old / "README.md").unlink()
    assert main(["card", str(old)]) == 0
    assert capsys.readouterr().out == model_card(read_checkpoint_config(old))
    assert not (old / "README.md").exists()  # printing never writes


def test_msqnet_card_of_a_missing_checkpoint_is_a_one_line_error(tmp_path, capsys):
    assert main(["card", str(tmp_path / "nothing")]) == 2
    assert capsys.readouterr().err == f"msqnet card: error: {tmp_path / 'nothing'}: checkpoint folder not found\n"


def test_a_metric_without_a_value_is_left_out_of_the_card():
    records = [{"kind": "eval", "epoch": 1, "step": 4, "split": "test", "map": 0.25, "map_tail": float("nan"),
                "chance": {"map": 0.125}, "num_clips": 10}]
    assert latest_evaluation(records) == [
        {"split": "test", "epoch": 1, "num_clips": 10, "metrics": {"map": 0.25}, "chance": {"map": 0.125}}]
