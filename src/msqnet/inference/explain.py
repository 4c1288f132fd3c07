"""Where and when the model looked: per-label spatial and temporal relevance of a clip, from the model itself.

With its default ``pooling: temporal`` MSQNet pools each temporal position's patch tokens into one token
before its class queries read them, so the decoder's cross-attention says *when* a class looked (over the
T' temporal tokens), never *where*. With ``pooling: spatiotemporal`` the queries read all T' x N patch
tokens, and each class's cross-attention is itself a map over space and time. Either way the maps are
carried back to the encoder's patch tokens by one of two methods:

* ``rollout``: the decoder's cross-attention (mean over layers and heads), through the pooling, back
  through the encoder's self-attention (attention rollout, Abnar & Zuidema 2020: the product over layers
  of ``(A + I) / 2`` with A the head-mean attention). The encoder's attention is the same for every
  class, so the classes' maps differ only through the memory tokens their queries weight: time steps
  only under temporal pooling, places and time steps under spatiotemporal pooling.
* ``gradcam``: gradient x activation at the encoder's output tokens (Grad-CAM on the token grid):
  ``relu(sum_d dlogit_c/dx_(t,n,d) * x_(t,n,d))``, specific to each class in space and time.

Both give, per label, a token-grid map (T', h, w), per-frame maps upsampled to the clip's S x S frames,
and a temporal relevance over the clip's T frames (the map's mass per frame); every explanation also
keeps the raw cross-attention, (T',) or, under spatiotemporal pooling, (T', h, w). ``benchmarks/explain_quality.py`` measures which method points at
the actor that performs a label (README, "Explanations").

Nothing here runs in ``predict``: the model's forward is untouched. ``explain(model, video, labels)``
(or ``model.explain``) explains one clip of a video, file or tensor; with ``window`` it streams one
explanation per timeline window (``msqnet.data.timeline``), decoding the video once with bounded memory.
"""
from __future__ import annotations

import math
import os
import typing
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, Iterator, Literal, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from ..data.decode import probe
from ..data.timeline import WindowClips
from ..data.views import TestView, read_test_clips
from ..models.msqnet import check_class_names, check_clips
from ..models.video_encoder import VideoTokens
from ..utils import quote

__all__ = ["Method", "METHODS", "explanation_view", "LabelExplanation", "Explanation", "explain_clip", "explain", "iter_explanations"]

Method = Literal["rollout", "gradcam"]
METHODS: tuple[str, ...] = typing.get_args(Method)


@dataclass
class LabelExplanation:
    """One label's relevance in one clip of T frames of S x S pixels.

    Args:
        label: the class name.
        probability: the model's score for it on this clip.
        temporal: (T,) relevance of each frame, summing to 1.
        spatial: (T, S, S) per-frame maps, the token map upsampled to the frame, in [0, 1] (1 at the
            clip's maximum; comparable across frames).
        tokens: (T', h, w) relevance of each encoder token (non-negative, unnormalised).
        cross_attention: the decoder's cross-attention of the label's query over its memory tokens,
            mean over layers and heads (sums to 1): (T',) over the temporal tokens, or (T', h, w) over
            the space-time tokens of a ``pooling: spatiotemporal`` model.
    """

    label: str
    probability: float
    temporal: np.ndarray
    spatial: np.ndarray
    tokens: np.ndarray
    cross_attention: np.ndarray

    def peak(self) -> tuple[int, int, int]:
        """``(frame, y, x)`` of the map's maximum over the whole clip, in frame pixels."""
        t, y, x = np.unravel_index(int(np.argmax(self.spatial)), self.spatial.shape)
        return int(t), int(y), int(x)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready numbers: score, temporal relevance, cross-attention, token maps and the peak."""
        t, y, x = self.peak()
        return {"label": self.label, "probability": self.probability,
                "temporal": [round(float(v), 6) for v in self.temporal],
                "cross_attention": np.round(self.cross_attention.astype(np.float64), 6).tolist(),
                "peak": {"frame": t, "y": y, "x": x},
                "tokens": np.round(self.tokens.astype(np.float64), 6).tolist()}


@dataclass
class Explanation:
    """The explanations of one clip (a whole video's test clip, or one timeline window).

    Args:
        source: the video (``<tensor>`` for a clip tensor).
        method: how the maps were computed (:data:`METHODS`).
        frames: (T, S, S, 3) uint8, the frames the model saw (after its test view's resize and crop).
        frame_indices: the source frame number of each of the T frames (``None`` for a tensor).
        start / end: the clip's span in seconds (``None`` for a tensor).
        labels: one :class:`LabelExplanation` per label, in the order asked.
    """

    source: str
    method: str
    frames: np.ndarray
    frame_indices: list[int] | None
    start: float | None
    end: float | None
    labels: list[LabelExplanation]

    def __getitem__(self, label: str) -> LabelExplanation:
        for item in self.labels:
            if item.label == label:
                return item
        raise KeyError(f"no explanation for label {quote(label)}; explained: {[x.label for x in self.labels]}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready view: source, span, frames, method and every label's numbers."""
        return {"source": self.source, "method": self.method, "start": self.start, "end": self.end,
                "frame_indices": self.frame_indices, "frame_size": list(self.frames.shape[1:3]),
                "labels": [x.to_dict() for x in self.labels]}


# --- what the model computes on the way ---------------------------------------------------------


def _head_mean_attention(q: torch.Tensor, k: torch.Tensor, scale: float) -> torch.Tensor:
    """Softmax attention probabilities of (B, H, N, d) queries and keys, averaged over heads: (B, N, N)."""
    return torch.softmax((q @ k.transpose(-2, -1)) * scale, dim=-1).mean(dim=1)


def _qkv_attention(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Head-mean attention (B, N, N) of a TimeSformer self-attention (joint ``qkv`` projection) on x (B, N, D)."""
    q, k, _ = rearrange(module.qkv(x), "b n (three h d) -> three b h n d", three=3, h=module.num_heads)
    return _head_mean_attention(q, k, q.shape[-1] ** -0.5)


def _videomae_attention(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Head-mean attention (B, N, N) of a VideoMAE self-attention on x (B, N, D)."""
    q, k = (rearrange(proj(x), "b n (h d) -> b h n d", h=module.num_attention_heads) for proj in (module.query, module.key))
    return _head_mean_attention(q, k, module.scaling)


def _input_of(args: tuple, kwargs: dict) -> torch.Tensor:
    return args[0] if args else kwargs["hidden_states"]


@contextmanager
def _recording(model: nn.Module, want_attention: bool):
    """While active: the video encoder's output tokens (made a leaf that takes gradients) and, with
    ``want_attention``, each encoder layer's head-mean attention, in ``record['tokens']`` / ``['layers']``."""
    record: dict[str, Any] = {"layers": []}
    hooks = []

    def keep_tokens(module, args, out: VideoTokens) -> VideoTokens:
        leaf = out.tokens.detach().float().requires_grad_(True)
        record["tokens"] = out
        record["leaf"] = leaf
        return replace(out, tokens=leaf)

    def keep(kind: str, fn):
        def hook(module, args, kwargs):
            with torch.no_grad():
                record["layers"].append((kind, fn(module, _input_of(args, kwargs)).float()))
        return hook

    enc = model.video_encoder
    hooks.append(enc.register_forward_hook(keep_tokens))
    if want_attention:
        from transformers import TimesformerModel, VideoMAEModel

        if hasattr(enc, "blocks"):  # frame_transformer: pre-norm nn.TransformerEncoderLayer blocks
            def block_attention(block, x):
                xn = block.norm1(x)
                return block.self_attn(xn, xn, xn, need_weights=True, average_attn_weights=True)[1]
            for block in enc.blocks:
                hooks.append(block.register_forward_pre_hook(keep("joint", block_attention), with_kwargs=True))
        elif isinstance(enc.backbone, TimesformerModel):
            for layer in enc.backbone.encoder.layer:
                if getattr(layer, "temporal_attention", None) is not None:
                    hooks.append(layer.temporal_attention.attention.register_forward_pre_hook(
                        keep("time", _qkv_attention), with_kwargs=True))
                    hooks.append(layer.attention.attention.register_forward_pre_hook(
                        keep("space", _qkv_attention), with_kwargs=True))
                else:
                    hooks.append(layer.attention.attention.register_forward_pre_hook(
                        keep("joint", _qkv_attention), with_kwargs=True))
        elif isinstance(enc.backbone, VideoMAEModel):
            for layer in enc.backbone.encoder.layer:
                hooks.append(layer.attention.attention.register_forward_pre_hook(
                    keep("joint", _videomae_attention), with_kwargs=True))
        else:
            raise ValueError(f"rollout: no attention to read in a {type(enc).__name__} video encoder")
    try:
        yield record
    finally:
        for h in hooks:
            h.remove()


def _divided_layer(time: torch.Tensor, space: torch.Tensor, v: VideoTokens) -> torch.Tensor:
    """One TimeSformer divided space-time layer as a token-to-token matrix (L, L), L = 1 + N*T, residuals halved in.

    ``time`` (N, T, T): each patch over the frames at its place; ``space`` (T, 1+N, 1+N): each frame's
    CLS and patches. The CLS output is the mean over frames of the per-frame CLS outputs.
    """
    n, t = v.num_space, v.num_time
    size = 1 + n * t
    idx = 1 + torch.arange(n)[:, None] * t + torch.arange(t)[None, :]  # (N, T): token of patch n at frame t
    m_time = torch.zeros(size, size)
    m_time[0, 0] = 1.0
    m_time[idx[:, :, None].expand(n, t, t), idx[:, None, :].expand(n, t, t)] = time
    m_space = torch.zeros(size, size)
    rows = idx.T  # (T, N)
    m_space[rows[:, :, None].expand(t, n, n), rows[:, None, :].expand(t, n, n)] = space[:, 1:, 1:]
    m_space[rows, 0] = space[:, 1:, 0]
    m_space[0, 0] = space[:, 0, 0].mean()
    m_space[0, rows] = space[:, 0, 1:] / t
    eye = torch.eye(size)
    return (0.5 * eye + 0.5 * m_space) @ (0.5 * eye + 0.5 * m_time)


def _rollout(layers: list[tuple[str, torch.Tensor]], v: VideoTokens) -> torch.Tensor:
    """Attention rollout (L, L) of one clip: output token i's share of input token j, through every layer."""
    size = v.tokens.shape[1]
    rolled = torch.eye(size)
    i = 0
    while i < len(layers):
        kind, att = layers[i]
        if kind == "time":  # TimeSformer: temporal then spatial attention of one layer
            time = att.reshape(v.num_space, v.num_time, v.num_time)  # batch of one clip: (N, T, T)
            space = layers[i + 1][1].reshape(v.num_time, 1 + v.num_space, 1 + v.num_space)
            step = _divided_layer(time, space, v)
            i += 2
        else:
            step = 0.5 * torch.eye(size) + 0.5 * att[0]  # (L, L)
            i += 1
        rolled = step @ rolled
    return rolled


def _pooling_matrix(model: nn.Module, v: VideoTokens) -> torch.Tensor:
    """(M, L): how the model's pooling mixes the L encoder tokens into its M memory tokens (it is linear)."""
    eye = torch.eye(v.tokens.shape[1]).unsqueeze(0)  # (1, L, L): token j is the j-th unit vector
    with torch.no_grad():
        return model.pool(replace(v, tokens=eye))[0]  # (M, L)


def _memory_grid(cross: torch.Tensor, model: nn.Module, v: VideoTokens) -> torch.Tensor:
    """Cross-attention (C, M) over the memory -> (C, T', h, w) for space-time memory, else unchanged (C, T')."""
    if model.cfg.pooling != "spatiotemporal":
        return cross
    side = math.isqrt(v.num_space)
    return rearrange(cross, "c (t h w) -> c t h w", t=v.num_time, h=side, w=side)  # memory is time-major


def _token_grid(values: torch.Tensor, v: VideoTokens) -> torch.Tensor:
    """Per-token values (..., L) in the encoder's order -> (..., T', h, w) on the token grid (CLS dropped)."""
    x = values[..., 1:] if v.has_cls else values
    side = math.isqrt(v.num_space)
    pattern = "... (h w t) -> ... t h w" if v.time_innermost else "... (t h w) -> ... t h w"
    return rearrange(x, pattern, t=v.num_time, h=side, w=side)


def _normalised(tokens: torch.Tensor, num_frames: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Token maps (T', h, w) -> temporal relevance (T,) summing to 1 and per-frame maps (T, S, S) in [0, 1]."""
    tokens = tokens.clamp_min(0)
    per_frame = tokens.repeat_interleave(num_frames // tokens.shape[0], dim=0)  # (T, h, w): a tubelet spans frames
    mass = per_frame.sum(dim=(1, 2))
    temporal = mass / mass.sum() if mass.sum() > 0 else torch.full_like(mass, 1 / num_frames)
    up = F.interpolate(per_frame[:, None], size=(size, size), mode="bilinear", align_corners=False)[:, 0]  # (T, S, S)
    up = up.clamp_min(0)
    peak = up.max()
    up = up / peak if peak > 0 else up
    return temporal.numpy(), up.numpy()


def explain_clip(model: nn.Module, clip: torch.Tensor, labels: Sequence[str] | None = None, *,
                 methods: Sequence[str] = METHODS) -> dict[str, list[LabelExplanation]]:
    """Explain one clip (T, 3, S, S), uint8 or float in [0, 1], for ``labels`` (default: the training
    classes) by each of ``methods``: ``{method: [LabelExplanation per label]}``, from one forward pass."""
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise ValueError(f"explanation method: expected some of {list(METHODS)}, got {list(methods)}")
    if clip.ndim != 4 or clip.shape[1] != 3:
        raise ValueError(f"explain a clip of shape (T, 3, S, S), got {tuple(clip.shape)}")
    check_clips(clip, model.cfg.num_frames, model.cfg.image_size)  # the model's T and S, uint8 or [0, 1] floats
    names = check_class_names(list(labels), "labels") if labels is not None else list(model.class_names)
    # Training classes are scored as in training (all of them: a closed-set head scores no subset); others by name.
    trained = all(n in model.class_names for n in names)
    label_embed = None if trained else model.embed_labels(names)
    rows = [model.class_names.index(n) for n in names] if trained else list(range(len(names)))
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode(False), torch.enable_grad(), _recording(model, "rollout" in methods) as rec:
            video = clip.clone().to(device).unsqueeze(0)  # (1, T, 3, S, S); a copy, in case it is an inference tensor
            out = model.decode(model.encode(video), label_embed=label_embed, return_attention=True)
            from ..engine.inference import to_probabilities

            probs = to_probabilities(out.logits.detach(), model.multi_label)[0, rows].cpu()  # (C,)
            logits = out.logits[0, rows].float()  # (C,)
            if not torch.isfinite(logits).all():
                raise ValueError("the model's scores are NaN or infinite: its weights have diverged or are corrupt")
            v: VideoTokens = rec["tokens"]
            cross = out.cross_attention[0, :, rows].float().mean(dim=0).detach().cpu()  # (C, M): mean over decoder layers
            maps: dict[str, torch.Tensor] = {}  # method -> (C, T', h, w) token relevance
            if "gradcam" in methods:
                leaf = rec["leaf"]
                grads = [torch.autograd.grad(logits[c], leaf, retain_graph=c + 1 < len(names))[0][0]
                         for c in range(len(names))]  # C x (L, D)
                cam = (torch.stack(grads) * leaf.detach()[0]).sum(dim=-1).relu().cpu()  # (C, L)
                maps["gradcam"] = _token_grid(cam, v)
            if "rollout" in methods:
                vc = replace(v, tokens=v.tokens.detach().cpu())
                rolled = _rollout([(k, a.cpu()) for k, a in rec["layers"]], vc)  # (L, L)
                relevance = cross @ _pooling_matrix(model, vc) @ rolled  # (C, M) @ (M, L) @ (L, L) -> (C, L)
                maps["rollout"] = _token_grid(relevance, vc)
    finally:
        model.train(was_training)
    num_frames, size = clip.shape[0], clip.shape[-1]
    cross = _memory_grid(cross, model, v)  # (C, T') or (C, T', h, w)
    results: dict[str, list[LabelExplanation]] = {}
    for method in methods:
        items = []
        for c, name in enumerate(names):
            tokens = maps[method][c].float()
            temporal, spatial = _normalised(tokens, num_frames, size)
            items.append(LabelExplanation(name, float(probs[c]), temporal, spatial, tokens.clamp_min(0).numpy(),
                                          cross[c].numpy()))
        results[method] = items
    return results


# --- videos -------------------------------------------------------------------------------------


def explanation_view(model: nn.Module) -> TestView:
    """The model's test view reduced to one clip and the centre crop: the clip an explanation shows."""
    return replace(model.test_view, clips=1, crops=1)


def _frames_of(clip: torch.Tensor) -> np.ndarray:
    """(T, 3, S, S) uint8 or [0, 1] float -> (T, S, S, 3) uint8 for pictures."""
    x = clip if clip.dtype == torch.uint8 else (clip.clamp(0, 1) * 255).round().to(torch.uint8)
    return rearrange(x, "t c h w -> t h w c").cpu().numpy()


def iter_explanations(model: nn.Module, source: str | os.PathLike, labels: Sequence[str] | None = None, *,
                      method: Method = "gradcam", window: float, stride: float | None = None,
                      fps: float | None = None) -> Iterator[Explanation]:
    """One :class:`Explanation` per timeline window of a video, streamed from one decode (bounded memory)."""
    view, T, S = explanation_view(model), model.cfg.num_frames, model.cfg.image_size
    for w, clips in WindowClips(source, view, num_frames=T, size=S, window=window, stride=stride or window, fps=fps):
        clip = clips[0]  # (T, 3, S, S)
        items = explain_clip(model, clip, labels, methods=[method])[method]
        indices = [w.start_frame + i for i in view.frame_indices(w.end_frame - w.start_frame, T)]
        yield Explanation(str(source), method, _frames_of(clip), indices, w.start_s, w.end_s, items)


def explain(model: nn.Module, video: str | os.PathLike | torch.Tensor, labels: Sequence[str] | None = None, *,
            method: Method = "gradcam", window: float | None = None, stride: float | None = None,
            fps: float | None = None) -> Explanation | list[Explanation]:
    """Per-label spatial and temporal relevance of a video (file or frame folder) or a clip tensor (T, 3, S, S).

    A video is explained on its test clip (the model's test view, one clip, centre crop); with ``window``
    (seconds) on every timeline window, giving a list (use :func:`iter_explanations` to stream them).
    """
    if method not in METHODS:
        raise ValueError(f"explanation method: expected one of {list(METHODS)}, got {quote(method)}")
    if isinstance(video, torch.Tensor):
        items = explain_clip(model, video, labels, methods=[method])[method]
        return Explanation("<tensor>", method, _frames_of(video), None, None, None, items)
    if window is not None:
        return list(iter_explanations(model, video, labels, method=method, window=window, stride=stride, fps=fps))
    view, T, S = explanation_view(model), model.cfg.num_frames, model.cfg.image_size
    info = probe(video, fps=fps)
    clip = read_test_clips(video, view, num_frames=T, size=S, fps=fps)[0]  # (T, 3, S, S)
    items = explain_clip(model, clip, labels, methods=[method])[method]
    return Explanation(str(video), method, _frames_of(clip), view.frame_indices(info.num_frames, T), 0.0,
                       info.duration, items)
