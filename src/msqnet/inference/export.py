"""Export a trained model to ONNX, and run an exported file with ONNX Runtime behind ``predict``.

``export_onnx(model, "model.onnx")`` traces the model's public forward (``torch.onnx.export`` with
the dynamo exporter) into one self-contained file:

- input ``video``: float32 (B, T, 3, S, S) in [0, 1] (B dynamic, up to ``msqnet.max_batch``);
- input ``label_embed`` (C', E), only for open-vocabulary models (``head: text``) exported
  without a label set: any class names can then be scored, embedded by the frozen text encoder
  on the Python side;
- output ``logits`` (B, C').

Closed-set models, and open-vocabulary models exported with ``labels``, have their label set
fixed in the file. The file's metadata holds the checkpoint's config, its test view (how clips are
built), the label names and, for a label input, the trained label embeddings of the training
classes, so :class:`OnnxRuntimeModel` needs nothing but the file (and the frozen text encoder for
new names).
"""
from __future__ import annotations

import base64
import copy
import json
import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn
from torch.onnx import _constants  # where torch states its exporter's range

from ..config_loader import from_dict, to_dict
from ..data.views import TestView
from ..metrics.thresholds import DecisionThresholds
from ..models.config import ModelConfig
from ..models.msqnet import MSQNet, mix_label_embeddings
from ..models.text import build_label_embedder
from ..utils import atomic_write_bytes

__all__ = ["ONNX_FORMAT", "require_onnx_exporter", "export_onnx", "supported_opsets", "OnnxRuntimeModel", "OnnxOutput"]

log = logging.getLogger(__name__)

ONNX_FORMAT = "msqnet-onnx"
FORMAT_VERSION = 1
_INSTALL_HINT = "ONNX support is an optional extra: pip install 'msqnet[onnx]'"


def require_onnx_exporter() -> None:
    """Import what torch's ONNX exporter needs (onnx, onnxscript and its own dependencies, e.g. onnx_ir):
    a missing or partly installed extra is the same clear ValueError."""
    try:
        import onnx  # noqa: F401  (the optional `onnx` extra)
        import onnxscript  # noqa: F401
    except ImportError as e:
        missing = f" ({e.name} is missing)" if e.name else ""
        raise ValueError(f"{_INSTALL_HINT}{missing}") from None


class _ExportedForward(nn.Module):
    """The model's public forward as the ONNX graph sees it: (video, [label_embed]) -> logits."""

    def __init__(self, model: MSQNet, fixed_label_embed: torch.Tensor | None):
        super().__init__()
        self.model = model
        if fixed_label_embed is not None:
            self.register_buffer("fixed_label_embed", fixed_label_embed)  # (C', E), baked into the graph
        else:
            self.fixed_label_embed = None

    def forward(self, video: torch.Tensor, label_embed: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (B, C') of a clip (B, T, 3, S, S) in [0, 1]."""
        if label_embed is None:
            label_embed = self.fixed_label_embed
        return self.model(video, label_embed=label_embed).logits


def _encode_array(x: torch.Tensor) -> str:
    """A float32 tensor as JSON text (shape + base64 bytes), for ONNX metadata."""
    a = x.detach().cpu().float().numpy()
    return json.dumps({"shape": list(a.shape), "data": base64.b64encode(a.tobytes()).decode("ascii")})


def _decode_array(text: str) -> torch.Tensor:
    """Inverse of :func:`_encode_array`."""
    d = json.loads(text)
    return torch.from_numpy(np.frombuffer(base64.b64decode(d["data"]), dtype=np.float32).reshape(d["shape"]).copy())


def supported_opsets() -> range:
    """The ONNX opsets ``export_onnx`` can write: from 18 (torch's exporter cannot convert its graph to an
    older one and would ignore the request) through the newest torch's exporter declares."""

    return range(18, getattr(_constants, "ONNX_MAX_OPSET", 23) + 1)


def export_onnx(model: MSQNet, out: str | os.PathLike, *, labels: Sequence[str] | None = None,
                opset: int | None = None) -> Path:
    """Write ``model`` as one ONNX file at ``out`` (atomically); returns the path.

    Args:
        model: the model (any device; exported from an fp32 CPU copy of its weights).
        out: the ``.onnx`` file to write.
        labels: fix this label set in the file (open-vocabulary models only); ``None`` = the
            training classes for closed-set models, a ``label_embed`` input for ``head: text``.
        opset: ONNX opset, one of ``supported_opsets()`` (default: the exporter's).
    """
    require_onnx_exporter()
    opsets = supported_opsets()
    if opset is not None and opset not in opsets:  # honoured or refused, never silently replaced
        raise ValueError(f"--opset {opset}: expected an ONNX opset {opsets.start}..{opsets.stop - 1} "
                         f"(what this torch's exporter writes)")
    if labels is not None and model.cfg.head != "text":
        raise ValueError(f"--labels at export needs an open-vocabulary model (head: text); this model (head: "
                         f"{model.cfg.head}) always scores its {model.num_classes} training classes")
    if any(p.device.type != "cpu" or p.dtype != torch.float32 for p in model.parameters()):
        model = copy.deepcopy(model).cpu().float()
    was_training = model.training
    try:
        return _export(model.eval(), Path(out), labels, opset)
    finally:
        model.train(was_training)


def _export(model: MSQNet, out: Path, labels: Sequence[str] | None, opset: int | None) -> Path:
    """:func:`export_onnx` of an fp32 CPU model in eval mode."""
    label_input = labels is None and model.cfg.head == "text"
    fixed = model.embed_labels(list(labels)).detach() if labels is not None else None
    names = list(labels) if labels is not None else list(model.class_names)
    wrapper = _ExportedForward(model, fixed).eval()

    t, s = model.cfg.num_frames, model.cfg.image_size
    # The frozen visual embedder splits B*T frames into chunks of max_images; one chunk keeps the graph static.
    max_images = getattr(model.visual_embedder, "max_images", None)
    max_batch = max(1, max_images // t) if max_images else 4096
    example_batch = min(2, max_batch)
    video = torch.rand(example_batch, t, 3, s, s, generator=torch.Generator().manual_seed(0))
    batch = torch.export.Dim("batch", min=1, max=max_batch) if max_batch > 1 else None
    args: tuple = (video,)
    dynamic: dict = {"video": {0: batch} if batch is not None else {}}
    input_names = ["video"]
    if label_input:
        args += (model.query_builder.label_embeddings.detach().clone(),)
        dynamic["label_embed"] = {0: torch.export.Dim("classes", min=1, max=1 << 20)}
        input_names.append("label_embed")

    for name in ("torch.onnx", "onnxscript", "onnx_ir"):
        logging.getLogger(name).setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(wrapper, args, None, input_names=input_names, output_names=["logits"],
                                    dynamic_shapes=dynamic, opset_version=opset, dynamo=True, verbose=False)
    meta = {
        "msqnet.format": ONNX_FORMAT,
        "msqnet.format_version": str(FORMAT_VERSION),
        "msqnet.model": json.dumps(to_dict(model.cfg)),
        "msqnet.class_names": json.dumps(list(model.class_names)),
        "msqnet.labels": json.dumps(names),
        "msqnet.label_input": json.dumps(label_input),
        "msqnet.multi_label": json.dumps(model.multi_label),
        "msqnet.test_view": json.dumps(to_dict(model.test_view)),
        "msqnet.clip_seconds": json.dumps(model.clip_seconds),
        "msqnet.decision_thresholds": json.dumps(None if model.decision_thresholds is None
                                                 else to_dict(model.decision_thresholds)),
        "msqnet.max_batch": str(max_batch),
    }
    if label_input:
        meta["msqnet.training_label_embed"] = _encode_array(model.query_builder.label_embeddings)
    program.model.metadata_props.update(meta)
    proto = program.model_proto
    if proto.ByteSize() >= 2**31:
        raise ValueError(f"{out}: the model is over 2 GB, more than one ONNX file holds")
    atomic_write_bytes(out, proto.SerializeToString())
    return out


@dataclass
class OnnxOutput:
    """ONNX Runtime output: ``logits`` (B, C')."""

    logits: torch.Tensor


class OnnxRuntimeModel:
    """An exported ``.onnx`` file run by ONNX Runtime, usable wherever ``predict`` takes a model.

    Args:
        path: a file written by :func:`export_onnx`.
        threads: intra-op threads (``None`` = ONNX Runtime's default, one per physical core).
    """

    device = torch.device("cpu")

    def __init__(self, path: str | os.PathLike, *, threads: int | None = None):
        try:
            import onnxruntime as ort  # the optional `onnx` extra
        except ImportError as e:
            raise ValueError(_INSTALL_HINT + (f" ({e.name} is missing)" if e.name else "")) from None
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: ONNX file not found")
        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only
        if threads is not None:
            options.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own error types for unreadable files
            raise ValueError(f"{self.path}: not a readable ONNX file ({e})") from None
        meta = self.session.get_modelmeta().custom_metadata_map
        if meta.get("msqnet.format") != ONNX_FORMAT:
            raise ValueError(f"{self.path}: not an ONNX file exported by msqnet (msqnet export CHECKPOINT --format onnx)")
        try:
            self._read_metadata(meta)
        except (KeyError, ValueError) as e:  # json.JSONDecodeError and ConfigError are ValueErrors
            raise ValueError(f"{self.path}: its msqnet metadata is incomplete or invalid ({e}); export it again "
                             "with msqnet export") from None
        self._label_embedder = None

    def _read_metadata(self, meta: dict[str, str]) -> None:
        """The config, test view, label names and trained label embeddings the export recorded."""
        if int(meta["msqnet.format_version"]) > FORMAT_VERSION:
            raise ValueError(f"format version {meta['msqnet.format_version']} is newer than this msqnet supports "
                             f"({FORMAT_VERSION})")
        self.cfg: ModelConfig = from_dict(ModelConfig, json.loads(meta["msqnet.model"]), where="model")
        self.training_class_names: list[str] = json.loads(meta["msqnet.class_names"])
        self.class_names: list[str] = json.loads(meta["msqnet.labels"])  # what the file scores by default
        self.label_input: bool = json.loads(meta["msqnet.label_input"])
        self.multi_label: bool = json.loads(meta["msqnet.multi_label"])
        self.test_view: TestView = from_dict(TestView, json.loads(meta["msqnet.test_view"]), where="test_view")
        self.max_batch = int(meta["msqnet.max_batch"])
        # Files exported before these were recorded: one clip per video, uncalibrated.
        self.clip_seconds: float | None = json.loads(meta.get("msqnet.clip_seconds", "null"))
        decisions = json.loads(meta.get("msqnet.decision_thresholds", "null"))
        self.decision_thresholds = (None if decisions is None else
                                    from_dict(DecisionThresholds, decisions, where="decision_thresholds"))
        self._training_label_embed = _decode_array(meta["msqnet.training_label_embed"]) if self.label_input else None

    def eval(self) -> OnnxRuntimeModel:
        """Nothing to switch: an exported graph is always in inference mode."""
        return self

    def embed_labels(self, names: Sequence[str]) -> torch.Tensor | None:
        """Label embeddings (C', E) for ``names``; ``None`` when they are the label set fixed in the file."""
        if not self.label_input:
            if list(names) != self.class_names:
                raise ValueError(f"{self.path} was exported for a fixed label set ({len(self.class_names)} labels: "
                                 f"{self.class_names[:5]}...); scoring other names needs an open-vocabulary model "
                                 "(head: text) exported without --labels")
            return None

        def embed_new(new: list[str]) -> torch.Tensor:
            if self._label_embedder is None:
                self._label_embedder = build_label_embedder(self.cfg.label_embedder)
            return self._label_embedder(new)

        return mix_label_embeddings(names, self.training_class_names, self._training_label_embed, embed_new)

    def __call__(self, video: torch.Tensor, *, label_embed: torch.Tensor | None = None) -> OnnxOutput:
        """Logits (B, C') of clips (B, T, 3, S, S), uint8 or float in [0, 1]."""
        if video.dtype == torch.uint8:
            video = video.float().div_(255.0)  # as the model's own normalisation does
        feed: dict[str, np.ndarray] = {}
        if self.label_input:
            embed = self._training_label_embed if label_embed is None else label_embed
            feed["label_embed"] = embed.detach().cpu().float().numpy()
        elif label_embed is not None:
            raise ValueError(f"{self.path} has its label set fixed; it takes no label embeddings")
        chunks = []
        for part in video.float().split(self.max_batch):  # (b, T, 3, S, S) each
            feed["video"] = part.contiguous().numpy()
            chunks.append(torch.from_numpy(self.session.run(["logits"], feed)[0]))
        return OnnxOutput(logits=torch.cat(chunks))
