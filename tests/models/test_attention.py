"""Encoder attention (auto / sdpa / eager): the same function, the fused kernel where asked, the same weights."""
from __future__ import annotations

import copy

import pytest
import torch
from torch.profiler import ProfilerActivity, profile

from msqnet.models import create_model
from msqnet.models.attention import FastTimesformerSelfAttention, attend, set_attention
from msqnet.models.config import DecoderConfig
from msqnet.models.decoder import QueryDecoder

from .tiny import tiny_config

CLASSES = ["walking", "running", "eating"]
FLASH = "aten::_scaled_dot_product_flash_attention_for_cpu"


def _model(family: str, attention: str):
    torch.manual_seed(0)
    return create_model(tiny_config(family, attention=attention), CLASSES).eval()


def _ops(fn) -> set[str]:
    """Names of every operator ``fn`` runs (nested calls included)."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    return {e.name for e in prof.events()}


@pytest.mark.parametrize("family", ["timesformer", "videomae"])
@pytest.mark.parametrize("kind", ["auto", "sdpa"])
def test_fast_attention_gives_the_eager_logits(family, kind):
    eager = _model(family, "eager")
    fast = set_attention(copy.deepcopy(eager), kind)
    clip = torch.rand(2, 4, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(fast(clip).logits, eager(clip).logits, atol=1e-5)


def test_fast_attention_keeps_the_state_dict_keys_so_checkpoints_load_either_way():
    eager, fast = _model("timesformer", "eager"), _model("timesformer", "auto")
    assert eager.state_dict().keys() == fast.state_dict().keys()
    fast.load_state_dict(eager.state_dict(), strict=True)
    layer = fast.video_encoder.backbone.encoder.layer[0]
    assert isinstance(layer.attention.attention, FastTimesformerSelfAttention)
    assert isinstance(layer.temporal_attention.attention, FastTimesformerSelfAttention)


def test_training_through_fast_attention_gives_the_eager_gradients():
    eager = _model("timesformer", "eager").train()
    fast = set_attention(copy.deepcopy(eager), "sdpa").train()
    clip = torch.rand(2, 4, 3, 32, 32)
    for m in (eager, fast):
        torch.manual_seed(1)  # the same decoder dropout masks in both
        m(clip).logits.sum().backward()
    qkv = "video_encoder.backbone.encoder.layer.0.attention.attention.qkv.weight"
    grads = {n: p.grad for n, p in eager.named_parameters() if p.grad is not None}
    for name, p in fast.named_parameters():
        if p.grad is not None:
            assert torch.allclose(p.grad, grads[name], atol=1e-5), name
    assert grads[qkv].abs().sum() > 0


@pytest.mark.parametrize("family", ["timesformer", "videomae"])
def test_sdpa_encoders_run_the_fused_kernel_and_eager_ones_do_not(family):
    clip = torch.rand(1, 4, 3, 32, 32)
    sdpa, eager = _model(family, "sdpa"), _model(family, "eager")
    with torch.inference_mode():
        assert FLASH in _ops(lambda: sdpa.video_encoder(clip))
        assert FLASH in _ops(lambda: sdpa.visual_embedder(clip))  # CLIP vision through HF's sdpa
        eager_ops = _ops(lambda: eager.video_encoder(clip)) | _ops(lambda: eager.visual_embedder(clip))
    assert FLASH not in eager_ops and "aten::_softmax" in eager_ops


def test_auto_attention_is_the_fused_kernel_in_fp32():
    model = _model("timesformer", "auto")
    with torch.inference_mode():
        assert FLASH in _ops(lambda: model.video_encoder(torch.rand(1, 4, 3, 32, 32)))


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_the_decoder_attention_runs_fused_kernels_at_inference(precision):
    decoder = QueryDecoder(DecoderConfig(d_model=16, num_heads=2, num_encoder_layers=1, num_decoder_layers=1,
                                         dim_feedforward=32)).eval()
    tokens, queries = torch.randn(2, 4, 16), torch.randn(2, 3, 16)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            decoder(tokens, queries)
    calls = {e.name for e in prof.events()}
    # nn.MultiheadAttention asks for no weights. At inference PyTorch runs self-attention (encoder
    # and decoder) in its native fused MHA kernel and cross-attention through SDPA's flash kernel.
    assert {"aten::_native_multi_head_attention", FLASH} <= calls


def test_attend_in_bf16_matches_fp32_attention_within_bf16_precision():
    q, k, v = torch.randn(3, 2, 2, 9, 16).unbind(0)
    expected = torch.softmax(q @ k.transpose(-2, -1) / 4.0, dim=-1) @ v
    for kind in ("auto", "sdpa"):
        got = attend(q.bfloat16(), k.bfloat16(), v.bfloat16(), kind=kind)
        assert got.dtype == torch.bfloat16 and torch.allclose(got.float(), expected, atol=3e-2)


def test_an_unknown_attention_kind_is_a_clear_error():
    with pytest.raises(ValueError, match="attention: expected one of"):
        set_attention(torch.nn.Linear(2, 2), "flash")
