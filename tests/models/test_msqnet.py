"""MSQNet end to end at tiny sizes: shapes, gradients, frozen parts, checkpoints, from_pretrained."""
from __future__ import annotations

import shutil

import pytest
import torch
from transformers import CLIPConfig, CLIPModel, CLIPTextConfig, CLIPTokenizer, CLIPVisionConfig
from transformers import TimesformerConfig, TimesformerModel

import msqnet
from msqnet.checkpoint import CheckpointError, load_model, save_model
from msqnet.models import create_model, get_model_config

from .tiny import TINY_CLIP_VISION, TINY_DECODER, TINY_TSF, tiny_config

CLASSES = ["walking", "running", "eating", "jumping over a fence", "sleeping"]


@pytest.mark.parametrize("family", ["timesformer", "videomae", "effnet", "frames"])
@pytest.mark.parametrize("pooling", ["temporal", "spatiotemporal", "reference"])
def test_every_family_maps_a_clip_to_one_logit_per_class(family, pooling):
    model = create_model(tiny_config(family, pooling=pooling), CLASSES)
    out = model(torch.rand(2, 4, 3, 32, 32))
    assert out.logits.shape == (2, len(CLASSES))
    assert out.class_features.shape == (2, len(CLASSES), 16)
    assert torch.isfinite(out.logits).all()


def test_a_spatiotemporal_memory_longer_than_the_decoders_positions_is_refused_naming_the_key():
    from msqnet.config_loader import ConfigError

    cfg = tiny_config(pooling="spatiotemporal", decoder={**TINY_DECODER, "max_len": 32})  # memory: 4 x 16 tokens
    with pytest.raises(ConfigError, match=r"4 x 16 = 64 memory tokens, more than decoder.max_len \(32\)"):
        create_model(cfg, CLASSES)


def test_uint8_and_float_clips_give_the_same_logits():
    model = create_model(tiny_config(), CLASSES).eval()
    clip = torch.randint(0, 256, (1, 4, 3, 32, 32), dtype=torch.uint8)
    assert torch.allclose(model(clip).logits, model(clip.float() / 255).logits, atol=1e-5)


def test_backward_reaches_exactly_the_trainable_parameters():
    model = create_model(tiny_config("effnet"), CLASSES).train()
    model(torch.rand(2, 4, 3, 32, 32)).logits.sum().backward()
    frozen = {n for n, _ in model.visual_embedder.named_parameters(prefix="visual_embedder")}
    assert frozen, "the visual embedder has parameters"
    for name, p in model.named_parameters():
        if name in frozen:
            assert not p.requires_grad and p.grad is None, name
        else:
            assert p.requires_grad and p.grad is not None and p.grad.abs().sum() > 0, name


def test_frozen_visual_embedder_stays_in_eval_mode_and_unchanged_while_training():
    model = create_model(tiny_config("effnet"), CLASSES)
    before = {k: v.clone() for k, v in model.visual_embedder.state_dict().items()}
    model.train()
    assert model.training and not model.visual_embedder.training
    model(torch.rand(2, 4, 3, 32, 32))  # BatchNorm running stats would move in train mode
    after = model.visual_embedder.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_precomputed_frozen_frames_give_the_same_logits():
    model = create_model(tiny_config(), CLASSES).eval()
    clip = torch.rand(2, 4, 3, 32, 32)
    frozen = model.frozen_frames(clip)  # the CLIP visual embedder's per-frame embeddings
    assert frozen.features is None and frozen.visual.shape[:2] == (2, 4)
    assert torch.equal(model(clip).logits, model(clip, frozen=frozen).logits)

def test_label_embeddings_come_from_the_real_sentence_encoder():
    model = create_model(tiny_config(), CLASSES)
    e = model.query_builder.label_embeddings.detach()
    assert e.shape == (5, 384)
    cos = torch.nn.functional.cosine_similarity
    assert cos(e[0], e[1], dim=0) > cos(e[0], e[4], dim=0)  # walking~running > walking~sleeping


def test_closed_set_head_refuses_new_class_names():
    model = create_model(tiny_config(), CLASSES)
    with pytest.raises(ValueError, match="head: text"):
        model.embed_labels(["flying"])


def test_text_head_scores_class_names_never_trained():
    model = create_model(tiny_config(head="text", trainable_label_embeddings=False), CLASSES).eval()
    names = ["walking", "swimming", "flying"]
    out = model(torch.rand(2, 4, 3, 32, 32), label_embed=model.embed_labels(names))
    assert out.logits.shape == (2, 3)
    assert torch.equal(model.embed_labels(["walking"])[0], model.query_builder.label_embeddings[0])


@pytest.mark.parametrize("family", ["timesformer", "effnet"])
def test_save_load_round_trip_gives_identical_logits(family, tmp_path):
    torch.manual_seed(0)
    model = create_model(tiny_config(family), CLASSES).eval()
    with torch.no_grad():  # make sure trained (non-initial) values survive
        model.query_builder.label_embeddings.add_(0.5)
    save_model(model, tmp_path / "ckpt")
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == [
        "README.md", "classes.txt", "config.json", "model.safetensors"]
    loaded = msqnet.load_model(tmp_path / "ckpt")
    assert not loaded.training and loaded.class_names == CLASSES
    clip = torch.rand(2, 4, 3, 32, 32)
    assert torch.equal(model(clip).logits, loaded(clip).logits)


def test_a_checkpoint_written_before_the_query_builder_was_renamed_still_loads(tmp_path):
    from safetensors.torch import load_file, save_file

    torch.manual_seed(0)
    model = create_model(tiny_config(), CLASSES).eval()
    save_model(model, tmp_path / "ckpt")
    weights = tmp_path / "ckpt" / "model.safetensors"
    old_names = {k.replace("query_builder.label_embeddings", "queries.query_embed").replace("query_builder.", "queries."): v
                 for k, v in load_file(str(weights)).items()}
    assert "queries.query_embed" in old_names and "queries.proj.weight" in old_names
    save_file(old_names, str(weights), metadata={"format": "msqnet-model"})
    clip = torch.rand(1, 4, 3, 32, 32)
    assert torch.equal(model(clip).logits, load_model(tmp_path / "ckpt")(clip).logits)


def test_frozen_pretrained_parts_are_stored_by_reference(tmp_path):
    from safetensors import safe_open

    save_model(create_model(tiny_config("effnet"), CLASSES), tmp_path / "ckpt")
    with safe_open(str(tmp_path / "ckpt" / "model.safetensors"), "pt") as f:
        keys = list(f.keys())
    assert not any(k.startswith("visual_embedder.") for k in keys)
    assert any(k.startswith("video_encoder.") for k in keys)


def test_saving_over_a_checkpoint_replaces_it_atomically(tmp_path):
    model = create_model(tiny_config(), CLASSES)
    save_model(model, tmp_path / "ckpt")
    save_model(model, tmp_path / "ckpt")
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]  # no temp or old folders left behind


def test_corrupt_or_truncated_checkpoints_give_clear_errors(tmp_path):
    save_model(create_model(tiny_config(), CLASSES), tmp_path / "good")
    bad = tmp_path / "truncated"
    shutil.copytree(tmp_path / "good", bad)
    weights = bad / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_model(bad)
    (bad / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_model(bad)
    with pytest.raises(CheckpointError, match="not found"):
        load_model(tmp_path / "absent")


def test_from_pretrained_local_folders_build_the_paper_architecture(tmp_path, shared_dir):
    """The b16 preset's real loading path, with tiny random encoders saved by save_pretrained."""
    TimesformerModel(TimesformerConfig(num_frames=8, image_size=32, **TINY_TSF)).save_pretrained(tmp_path / "tsf")
    text = CLIPTextConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2)
    clip_config = CLIPConfig(text_config=text.to_dict(), vision_config=CLIPVisionConfig(**TINY_CLIP_VISION).to_dict(),
                             projection_dim=8)
    CLIPModel(clip_config).save_pretrained(tmp_path / "clip")  # one folder with both towers, like the hub's
    CLIPTokenizer.from_pretrained(shared_dir / "fixtures" / "clip_tokenizer").save_pretrained(tmp_path / "clip")
    cfg = get_model_config("msqnet-b16", [
        f"video_encoder.pretrained={tmp_path / 'tsf'}", f"label_embedder.pretrained={tmp_path / 'clip'}",
        f"visual_embedder.pretrained={tmp_path / 'clip'}", "num_frames=4", "image_size=32",
        "decoder.d_model=16", "decoder.num_heads=2", "decoder.num_encoder_layers=1", "decoder.num_decoder_layers=1",
    ])
    model = create_model(cfg, CLASSES).eval()
    assert model.query_builder.label_embeddings.shape == (5, 16)  # CLIP text width, no projection
    assert model.query_builder.proj.in_features == 16 + 24  # text width + CLIP vision width
    assert model.video_encoder.backbone.embeddings.time_embeddings.shape[1] == 4  # interpolated from 8
    clip = torch.rand(1, 4, 3, 32, 32)
    save_model(model, tmp_path / "ckpt")
    assert torch.equal(model(clip).logits, load_model(tmp_path / "ckpt")(clip).logits)


def test_lite_preset_builds_offline_with_its_real_pretrained_parts():
    """The CPU default as shipped: MiniLM label text, frozen ImageNet EfficientNet-Lite0 frame features read
    by a small trainable space-time transformer, the clip's own video embedding in the queries."""
    model = create_model("msqnet-lite", CLASSES).eval()
    assert model.query_builder.text_dim == 384 and model.visual_embedder is None
    assert model.cfg.video_encoder.kind == "frame_transformer" and model.video_encoder.num_space == 7 * 7
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    assert 0.5e6 < trainable < 2e6 and frozen > 0  # under a million trained parameters beside the frozen CNN
    with torch.no_grad():
        out = model(torch.randint(0, 256, (1, 8, 3, 112, 112), dtype=torch.uint8))
    assert out.logits.shape == (1, len(CLASSES))
