"""The compiled inference path (``msqnet.compiled``): the setting and its ``auto`` rule, the numbers equal to the
eager path, one compilation for all the layers of a block class, and the eager fallback when compiling fails.

Compiling runs inductor and the C++ compiler for real (tens of seconds), so one tiny model (a 3-layer
TimeSformer, no CLIP) is compiled once per precision and shared by the tests; the bf16 one is marked slow.
"""
from __future__ import annotations

import copy
import logging

import pytest
import torch
from torch import nn
from torch._dynamo.utils import counters

from msqnet.compiled import AUTO_MIN_BLOCK_WEIGHTS, COMPILE_ENV, compile_setting, repeated_blocks, should_compile
from msqnet.hardware import ISA_ENV, describe
from msqnet.models import create_model
from msqnet.precision import autocast, cast_for_inference

from .models.tiny import TINY_TSF, tiny_config

CLASSES = ["walking", "running", "eating"]
LAYERS = 3
FP32_TOL = 1e-5  # logits: the same arithmetic, fused differently
BF16_TOL = 5e-2  # logits of bf16 weights: inductor rounds fused elementwise chains to bf16 once, eager per op


@pytest.fixture(scope="module")
def tiny():
    """A 3-layer tiny TimeSformer MSQNet (text queries, no visual embedder) in eval mode, and a clip."""
    cfg = tiny_config("timesformer", video_encoder={"kind": "timesformer", "config": {**TINY_TSF,
                      "num_hidden_layers": LAYERS}}, visual_embedder={"kind": "none"}, query="text")
    torch.manual_seed(0)
    clip = torch.randint(0, 256, (2, 4, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    return create_model(cfg, CLASSES).eval(), clip


def run(model: nn.Module, clip: torch.Tensor, precision: str) -> torch.Tensor:
    """Logits (B, C) as ``msqnet predict`` computes them, in fp32."""
    with torch.inference_mode(), autocast("cpu", precision):
        return model(clip).logits.float()


@pytest.fixture(scope="module")
def compiled_fp32(tiny):
    """Eager and compiled logits of the tiny model in fp32, and the dynamo frames the compiled forward compiled."""
    model, clip = tiny
    torch._dynamo.reset()
    eager = run(cast_for_inference(copy.deepcopy(model), "fp32", compile="0"), clip, "fp32")
    before = counters["frames"]["ok"]
    got = run(cast_for_inference(copy.deepcopy(model), "fp32", compile="1"), clip, "fp32")
    return eager, got, counters["frames"]["ok"] - before


def test_compile_setting_comes_from_the_argument_then_the_environment(monkeypatch):
    monkeypatch.setenv(COMPILE_ENV, "0")
    assert compile_setting() == "0" and compile_setting("1") == "1"
    monkeypatch.delenv(COMPILE_ENV)
    assert compile_setting() == "auto"


def test_a_bad_compile_setting_is_a_one_line_error(monkeypatch):
    monkeypatch.setenv(COMPILE_ENV, "yes")
    with pytest.raises(ValueError, match=r"^MSQNET_COMPILE='yes': expected 0 \(eager\), 1 \(compiled\) or auto$"):
        compile_setting()


class _Block(nn.Module):
    """A stand-in encoder block of ``width`` x ``width`` weights."""

    def __init__(self, width: int):
        super().__init__()
        self.fc = nn.Linear(width, width, bias=False)


@pytest.mark.parametrize("isa, width, expected", [
    ("amx", 1600, True),  # 2 x 1600^2 = 5.1M weights in the repeated blocks: b16-sized
    ("amx", 1500, False),  # 4.5M: the warm-up would outweigh what compiling saves
    ("avx512_bf16", 1600, False),  # GEMM-bound without AMX: compiling measured no faster
    ("none", 1600, False),
])
def test_auto_compiles_b16_sized_models_on_amx_only(isa, width, expected, monkeypatch):
    monkeypatch.setenv(ISA_ENV, isa)
    monkeypatch.delenv(COMPILE_ENV, raising=False)
    model = nn.Sequential(nn.ModuleList([_Block(width), _Block(width)]))
    assert (2 * width * width >= AUTO_MIN_BLOCK_WEIGHTS) == (width == 1600)
    assert should_compile(model, "cpu") is expected
    assert should_compile(model, "cpu", "1") and not should_compile(model, "cpu", "0")


@pytest.mark.parametrize("isa, says", [("amx", "compile auto -> b16-sized models compiled"),
                                       ("none", "compile auto -> eager")])
def test_the_test_log_says_which_path_compile_auto_takes(isa, says, monkeypatch):
    monkeypatch.setenv(ISA_ENV, isa)
    assert says in describe()


def test_the_repeated_blocks_are_the_encoder_layers(tiny):
    assert [type(b).__name__ for b in repeated_blocks(tiny[0])] == ["TimesformerLayer"] * LAYERS


def test_compiled_logits_equal_eager_in_fp32(compiled_fp32):
    eager, got, _ = compiled_fp32
    assert (got - eager).abs().max().item() <= FP32_TOL


def test_all_layers_share_one_compilation(compiled_fp32):
    assert compiled_fp32[2] == 1  # one frame compiled for the 3 TimesformerLayers, none recompiled per layer


def test_a_deep_copy_of_a_compiled_model_runs_its_own_weights(tiny, compiled_fp32):
    model, clip = tiny
    fast = cast_for_inference(copy.deepcopy(model), "fp32", compile="1")  # the graph compiled above serves it
    twin = copy.deepcopy(fast)
    with torch.no_grad():
        for p in twin.video_encoder.backbone.encoder.layer[1].parameters():
            p.mul_(0.5)
    eager_twin = cast_for_inference(copy.deepcopy(twin), "fp32", compile="0")
    assert (run(twin, clip, "fp32") - run(eager_twin, clip, "fp32")).abs().max().item() <= FP32_TOL
    assert (run(fast, clip, "fp32") - compiled_fp32[0]).abs().max().item() <= FP32_TOL


@pytest.mark.slow  # a second compilation, of emulated bf16 where the CPU has no bf16 hardware (2 min on 2 busy cores)
def test_compiled_logits_equal_eager_with_bf16_weights(tiny):
    model, clip = tiny
    eager = run(cast_for_inference(copy.deepcopy(model), "bf16", compile="0"), clip, "bf16")
    got = run(cast_for_inference(copy.deepcopy(model), "bf16", compile="1"), clip, "bf16")
    assert (got - eager).abs().max().item() <= BF16_TOL


def test_a_failed_compilation_runs_eager_with_one_warning(tiny, caplog):
    """No C++ compiler (inductor's ``cpp.cxx`` set to a missing program, the on-disk caches off): one warning line,
    the eager numbers, and the blocks back on the eager path."""
    import torch._functorch.config as functorch_config
    import torch._inductor.config as inductor_config

    model, clip = tiny
    eager = run(copy.deepcopy(model), clip, "fp32")
    torch._dynamo.reset()
    try:
        with inductor_config.patch({"cpp.cxx": ("/nonexistent/c++",), "fx_graph_cache": False}), \
                functorch_config.patch({"enable_autograd_cache": False}), caplog.at_level(logging.WARNING):
            fast = cast_for_inference(copy.deepcopy(model), "fp32", compile="1")
            first, second = run(fast, clip, "fp32"), run(fast, clip, "fp32")
    finally:
        torch._dynamo.reset()
    warnings = [r for r in caplog.records if r.name == "msqnet.compiled"]
    assert len(warnings) == 1 and "torch.compile failed" in warnings[0].getMessage()
    assert "\n" not in warnings[0].getMessage() and warnings[0].exc_info is None
    assert torch.equal(first, eager) and torch.equal(second, eager)
    assert all(b._compiled_call_impl is None for b in repeated_blocks(fast))
