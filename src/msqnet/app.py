"""A local web page to try a model (``msqnet app``): upload or pick a video, get its top labels.

The page (Gradio, the optional ``app`` extra) scores a video with ``msqnet.predict`` exactly as
``msqnet predict`` does: the top labels of the whole video, and for videos longer than the window a
timeline plot and a per-window table (``predict(..., window=, stride=)`` and the CLI's timeline
plot). Open-vocabulary models take any class names typed on the page; closed-set models score the
classes they were trained on. An unreadable upload or a bad label list gives a message on the page.
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .card import is_open_vocabulary
from .config_loader import to_dict

__all__ = ["PageResult", "analyse_video", "build_app", "check_address", "serve", "VIDEO_SUFFIXES"]

VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v")


@dataclass
class PageResult:
    """What the page shows for one video.

    Args:
        labels: the top labels, label -> probability, most probable first.
        message: a one-paragraph summary, or what went wrong.
        timeline: path of the timeline PNG (videos longer than the window), else None.
        table_headers: the per-window table's columns: start, end, then the top labels.
        table: one row per window: start and end (seconds) and each top label's probability.
    """

    labels: dict[str, float] = field(default_factory=dict)
    message: str = ""
    timeline: str | None = None
    table_headers: list[str] = field(default_factory=list)
    table: list[list[float]] = field(default_factory=list)


def _label_list(text: str | None) -> list[str] | None:
    """The typed class names (None = the model's own); typed names need an open-vocabulary model."""
    from .cli.predict import clean_label_list

    if not text or not text.strip():
        return None
    return clean_label_list(text.split(","))


def analyse_video(model, video: str | None, labels_text: str | None = None, *, window: float = 4.0,
                  stride: float = 2.0, top_k: int = 5, workdir: str | os.PathLike | None = None) -> PageResult:
    """Score one video for the page: top labels, and a timeline with a per-window table for long videos."""
    from .cli.predict import plot_timeline
    from .data.decode import DecodeError, probe
    from .predict import predict

    if not video:
        return PageResult(message="Upload a video or pick an example first.")
    name = Path(video).name
    try:
        labels = _label_list(labels_text)
        whole = predict(model, video, labels)
    except ValueError as e:
        return PageResult(message=f"Cannot score these labels: {e}")
    if whole.error is not None:
        reason = whole.error.replace(str(video), name)
        return PageResult(message=f"Could not read {name} as a video: {reason}. Upload a video file "
                                  f"({', '.join(VIDEO_SUFFIXES)}, any codec FFmpeg reads).")
    top = whole.top(top_k)
    result = PageResult(labels=dict(top))
    try:
        info = probe(video)
    except DecodeError as e:  # readable a moment ago: only a file changed under us lands here
        return PageResult(message=f"Could not read {name}: {e}")
    result.message = (f"**{name}**: {info.duration:.1f} s, {info.num_frames} frames; {len(whole.labels)} labels scored "
                      f"on one clip of {model.cfg.num_frames} frames over the whole video.")
    if info.duration > window:
        timed = predict(model, video, labels, window=window, stride=stride)
        folder = Path(workdir or tempfile.mkdtemp(prefix="msqnet-app-"))
        png = folder / f"{Path(video).stem}.timeline.png"
        plot_timeline(timed, png, top_k=top_k)
        result.timeline = str(png)
        shown = [label for label, _ in top]
        column = {label: i for i, label in enumerate(timed.labels)}
        result.table_headers = ["start (s)", "end (s)", *shown]
        result.table = [[round(w.start, 2), round(w.end, 2),
                         *(round(float(w.probabilities[column[label]]), 3) for label in shown)]
                        for w in timed.windows]
        result.message += f" Timeline: {len(timed.windows)} windows of {window:g} s every {stride:g} s."
    return result


def _describe(model, source: str) -> str:
    """The page's header: which model, what it scores."""
    cfg = to_dict(model.cfg)
    names = model.class_names
    listed = ", ".join(names[:20]) + (f", ... ({len(names)} in all)" if len(names) > 20 else "")
    kind = ("open vocabulary: type any class names, comma-separated, or leave the box empty for the trained ones"
            if is_open_vocabulary(cfg) else "closed set: it scores only the classes it was trained on")
    return (f"# Try msqnet\n\nModel `{source}` (preset `{cfg['name']}`, {model.cfg.num_frames} frames at "
            f"{model.cfg.image_size} px), {kind}.\n\nTrained classes: {listed}.")


def _example_videos(folder: str | os.PathLike | None) -> list[str]:
    """The video files of an examples folder, sorted by name."""
    if folder is None:
        return []
    path = Path(folder)
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: examples folder not found")
    return sorted(str(p) for p in path.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)


def build_app(model, *, source: str, examples: list[str] | None = None, window: float = 4.0, stride: float = 2.0,
              top_k: int = 5):
    """The Gradio page for one loaded model."""
    import gradio as gr

    workdir = tempfile.mkdtemp(prefix="msqnet-app-")
    open_vocab = is_open_vocabulary(to_dict(model.cfg))

    def run(video: str | None, labels_text: str | None) -> tuple[Any, ...]:
        r = analyse_video(model, video, labels_text, window=window, stride=stride, top_k=top_k, workdir=workdir)
        table = gr.update(value=r.table or None, headers=r.table_headers or None, visible=bool(r.table))
        return r.labels or None, r.message, gr.update(value=r.timeline, visible=r.timeline is not None), table

    with gr.Blocks(title="msqnet", analytics_enabled=False) as page:
        gr.Markdown(_describe(model, source))
        with gr.Row():
            with gr.Column():
                video = gr.Video(label="Video", sources=["upload"], format=None, include_audio=True,
                                 elem_id="video")
                labels = gr.Textbox(label="Class names (comma-separated)", elem_id="labels", visible=open_vocab,
                                    placeholder=", ".join(model.class_names[:8]))
                button = gr.Button("Recognise actions", variant="primary", elem_id="run")
                if examples:
                    gr.Examples(examples=[[e] for e in examples], inputs=[video], label="Example videos",
                                example_labels=[Path(e).name for e in examples])
            with gr.Column():
                status = gr.Markdown(elem_id="status")
                top = gr.Label(label="Top labels", num_top_classes=top_k, elem_id="top")
                timeline = gr.Image(label="Timeline", type="filepath", visible=False, elem_id="timeline")
        table = gr.Dataframe(label="Per window", visible=False, interactive=False, elem_id="windows")
        button.click(run, inputs=[video, labels], outputs=[top, status, timeline, table])
    return page


def check_address(host: str, port: int) -> None:
    """Refuse an address the page cannot listen on before a model loads, blaming the part at fault: a host
    that does not resolve or is not this machine's (``--host``), or a port in use (``--port``)."""
    import errno
    import socket

    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                             flags=socket.AI_PASSIVE)[0]
    except socket.gaierror as e:
        raise ValueError(f"--host {host}: not an address or a host name this machine resolves ({e.strerror}); "
                         f"expected e.g. 127.0.0.1 (this machine only) or 0.0.0.0 (every interface)") from None
    with socket.socket(family, kind, proto) as probe_socket:
        probe_socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe_socket.bind(address)
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise ValueError(f"--port {port}: already in use on {host}; pick another port") from None
            if e.errno == errno.EACCES:
                raise ValueError(f"--port {port}: not allowed for this user ({e.strerror}); pick a port above "
                                 f"1023") from None
            raise ValueError(f"--host {host}: cannot listen on it ({e.strerror}); expected an address of this "
                             f"machine, e.g. 127.0.0.1 or 0.0.0.0") from None


def serve(checkpoint: str, *, examples: str | None = None, host: str = "127.0.0.1", port: int = 7860,
          window: float = 4.0, stride: float = 2.0, top_k: int = 5) -> None:
    """Load a checkpoint (folder or hub repo id) and serve its page until interrupted."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no calls home from a local demo
    from .checkpoint import load_model

    if window <= 0 or stride <= 0:
        raise ValueError(f"--window and --stride must be > 0 (got {window}, {stride})")
    check_address(host, port)
    videos = _example_videos(examples)
    model = load_model(checkpoint)
    page = build_app(model, source=str(checkpoint), examples=videos, window=window, stride=stride, top_k=top_k)
    allowed = [str(Path(examples).resolve())] if examples else None
    page.launch(server_name=host, server_port=port, share=False, inbrowser=False, allowed_paths=allowed)
