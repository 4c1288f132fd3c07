"""Hardware decisions, each forced on any machine: the CPU ISA (``MSQNET_CPU_ISA``), precision and attention
``auto``, device names for every command, and a partly installed ONNX extra."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from msqnet.cli import main
from msqnet.config_loader import ConfigError
from msqnet.hardware import ISA_ENV, cpu_isa, describe, detected_cpu_isa, parse_device
from msqnet.models.attention import attend
from msqnet.precision import resolve_precision

BAD_DEVICES = ["mps", "xpu", "meta", "CPU", "cpu:-1", "auto:0", "", "tpu", "cuda:x", "cuda:"]


@pytest.mark.parametrize("isa", ["amx", "avx512_bf16", "none"])
def test_the_isa_variable_replaces_what_the_cpu_reports(isa, monkeypatch):
    monkeypatch.setenv(ISA_ENV, isa)
    assert cpu_isa() == isa and f"CPU ISA {isa} (forced" in describe()


def test_without_the_variable_the_cpu_decides(monkeypatch):
    monkeypatch.delenv(ISA_ENV, raising=False)
    assert cpu_isa() == detected_cpu_isa()


def test_an_unknown_isa_name_is_a_clear_error(monkeypatch):
    monkeypatch.setenv(ISA_ENV, "sse2")
    with pytest.raises(ValueError, match=r"MSQNET_CPU_ISA='sse2': expected one of \['amx', 'avx512_bf16', 'none'\]"):
        cpu_isa()


@pytest.mark.parametrize("isa, expected", [("amx", "bf16"), ("avx512_bf16", "bf16"), ("none", "fp32")])
def test_precision_auto_is_bf16_only_where_the_cpu_multiplies_bf16(isa, expected, monkeypatch):
    monkeypatch.setenv(ISA_ENV, isa)
    assert resolve_precision("auto", "cpu") == expected
    assert resolve_precision("fp32", "cpu") == "fp32" and resolve_precision("bf16", "cpu") == "bf16"


def _qkv(dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(0)
    return tuple(torch.randn(2, 2, 10, 8, generator=g).to(dtype) for _ in range(3))  # (B, H, N, d)


@pytest.mark.parametrize("isa", ["amx", "none"])
def test_attention_auto_in_bf16_is_the_fused_kernel_on_amx_and_without_bf16_hardware(isa, monkeypatch):
    monkeypatch.setenv(ISA_ENV, isa)
    q, k, v = _qkv(torch.bfloat16)
    assert torch.equal(attend(q, k, v), F.scaled_dot_product_attention(q, k, v))


def test_attention_auto_in_bf16_is_three_plain_kernels_on_avx512_bf16_without_amx(monkeypatch):
    monkeypatch.setenv(ISA_ENV, "avx512_bf16")
    q, k, v = _qkv(torch.bfloat16)
    expected = torch.softmax((q * 8**-0.5) @ k.transpose(-2, -1), dim=-1) @ v  # N=10 > d=8: q scaled, not the scores
    assert torch.equal(attend(q, k, v), expected)
    assert torch.equal(attend(q, k, v, kind="sdpa"), F.scaled_dot_product_attention(q, k, v))


@pytest.mark.parametrize("isa", ["amx", "none"])
def test_attention_auto_in_fp32_is_the_fused_kernel_on_any_cpu(isa, monkeypatch):
    monkeypatch.setenv(ISA_ENV, isa)
    q, k, v = _qkv(torch.float32)
    assert torch.equal(attend(q, k, v), F.scaled_dot_product_attention(q, k, v))


@pytest.mark.parametrize("name", ["auto", "cpu", "cuda", "cuda:0", "cuda:12"])
def test_device_names_msqnet_runs_on_parse(name):
    assert parse_device(name) == name


@pytest.mark.parametrize("name", BAD_DEVICES)
def test_other_device_names_are_refused_naming_what_is_expected(name):
    with pytest.raises(ValueError, match=r"expected auto, cpu, cuda or cuda:N"):
        parse_device(name)


@pytest.mark.parametrize("name", BAD_DEVICES)
def test_predict_refuses_a_bad_device_in_one_line(name, tmp_path, capsys):
    rc = main(["predict", str(tmp_path / "clip.mp4"), "--checkpoint", str(tmp_path), "--device", name])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err[-1] == (f"msqnet predict: error: argument --device: device {name!r}: expected auto, cpu, "
                                   "cuda or cuda:N (N = 0, 1, ...)")


@pytest.mark.parametrize("name", ["tpu", "mps", ""])
def test_evaluate_refuses_a_bad_device_in_one_line(name, tmp_path, capsys):
    rc = main(["evaluate", str(tmp_path), "--data", str(tmp_path / "train.yaml"), "--device", name])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err[-1].startswith(f"msqnet evaluate: error: argument --device: device {name!r}: expected")


def test_a_training_config_refuses_a_bad_device_with_the_same_parser():
    from msqnet.engine.config import load_train_config

    with pytest.raises(ConfigError, match=r"device: device 'cuda:x': expected auto, cpu, cuda or cuda:N"):
        load_train_config("demo", ["device=cuda:x"])


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: 'cuda' is a valid device here")
def test_cuda_on_a_machine_without_it_is_a_user_error(tmp_path, capsys):
    rc = main(["predict", str(tmp_path / "clip.mp4"), "--checkpoint", str(tmp_path), "--device", "cuda"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and "CUDA is not available on this machine" in err[-1]


_HIDE_AND_EXPORT = """
import sys
from msqnet.cli import main
for name in ("onnx_ir", "onnx"):  # onnx installed but a dependency of onnxscript missing; then onnx itself
    sys.modules[name] = None
    print(main(sys.argv[1:]))
"""


def test_export_with_a_partly_installed_onnx_extra_names_the_extra_as_when_onnx_is_absent(tmp_path):
    pytest.importorskip("onnxscript")
    ckpt = tmp_path / "ckpt"  # checked before the checkpoint is read: no model is loaded only to fail
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", _HIDE_AND_EXPORT, "export", str(ckpt), "--out", str(tmp_path / "m.onnx")],
                          capture_output=True, text=True, env=env, timeout=300)
    hint = "msqnet export: error: ONNX support is an optional extra: pip install 'msqnet[onnx]'"
    assert proc.stdout.split() == ["2", "2"], proc.stderr
    assert proc.stderr.strip().splitlines() == [f"{hint} (onnx_ir is missing)", f"{hint} (onnx is missing)"]
    assert not (tmp_path / "m.onnx").exists()
