"""A local web page to try a model (``msqnet app``): upload or pick a video, get its labels and events.

The page (Gradio, the optional ``app`` extra) scores a video with one ``msqnet.predict`` call, as
``msqnet predict`` does, and every panel shows that one result: the whole-video labels (for a video
much longer than the model's training clips, the aggregate of windows of their length; for a model
that records no clip length, of ``--window`` windows once the video is longer than one), the
labels detected with the model's thresholds (or that its scores are uncalibrated), the timeline
plot and per-window table of the same windows, the behaviour events, and downloads of the result as
JSON and CSV. Clicking a label shows where the model looks for it (``inference.overlay.label_overlay``:
the relevance map over its test clip, as a contact sheet and a video). The model card is on the page.
Each scoring writes into its own temporary folder, removed an hour later or when the server stops.
Open-vocabulary models take any class names typed on the page; closed-set models score the classes
they were trained on. An unreadable upload or a bad label list gives a message on the page.
"""
from __future__ import annotations

import atexit
import errno
import html
import json
import os
import shutil
import socket
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av

from ..checkpoint import load_model, read_card
from ..checkpoint.card import is_open_vocabulary
from ..config_loader import to_dict
from ..data.decode import DecodeError, probe
from ..inference.events import events_of
from ..inference.outputs import clean_label_list, describe_view, format_csv, plot_timeline
from ..inference.overlay import label_overlay
from ..inference.predict import predict
from ..utils import atomic_write_text, json_text

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
        detected: the labels detected with the model's thresholds; ``None`` when uncalibrated.
        events: the behaviour events (``msqnet.inference.events.Event``), in time order.
        downloads: the result as JSON and CSV files.
        headline: the labels panel's big line: the detected labels, "nothing detected", or that the
            scores are uncalibrated (never the top label of scores that decide nothing).
    """

    labels: dict[str, float] = field(default_factory=dict)
    message: str = ""
    timeline: str | None = None
    table_headers: list[str] = field(default_factory=list)
    table: list[list[float]] = field(default_factory=list)
    detected: list[str] | None = None
    events: list[Any] = field(default_factory=list)
    downloads: list[str] = field(default_factory=list)
    headline: str = ""


def _label_list(text: str | None) -> list[str] | None:
    """The typed class names (None = the model's own); typed names need an open-vocabulary model."""
    if not text or not text.strip():
        return None
    return clean_label_list(text.split(","))


def _unreadable(name: str, reason: str) -> PageResult:
    return PageResult(message=f"Could not read {name} as a video: {reason}. Upload a video file "
                              f"({', '.join(VIDEO_SUFFIXES)}, any codec FFmpeg reads).")


def _write_downloads(pred, events, folder: Path) -> list[str]:
    """The prediction (with its events) as ``<video>.json`` and ``<video>.csv`` in ``folder``."""
    stem = Path(pred.source).stem
    record = {**pred.to_dict(), "source": Path(pred.source).name}
    if events is not None:
        record["events"] = [e.to_dict() for e in events]
    paths = [folder / f"{stem}.json", folder / f"{stem}.csv"]
    atomic_write_text(paths[0], json_text(record, indent=2) + "\n")
    atomic_write_text(paths[1], format_csv([pred]).replace(pred.source, Path(pred.source).name))
    return [str(p) for p in paths]


def analyse_video(model, video: str | None, labels_text: str | None = None, *, window: float = 4.0,
                  stride: float = 2.0, top_k: int = 5, workdir: str | os.PathLike | None = None) -> PageResult:
    """Score one video for the page: whole-video and detected labels, and for long videos the timeline,
    per-window table and events of the same windows; the result as JSON and CSV in ``workdir``.

    ``window``/``stride`` lay the windows for a model that records no training-clip length (one
    that does is scored in windows of that length, as ``msqnet predict`` scores it).
    """
    if not video:
        return PageResult(message="Upload a video or pick an example first.")
    name = Path(video).name
    try:
        info = probe(video)
    except (DecodeError, OSError, ValueError) as e:
        return _unreadable(name, str(e).replace(str(video), name))
    own_windows = getattr(model, "clip_seconds", None) is not None
    timeline = {} if own_windows or info.duration <= window else {"window": window, "stride": stride}
    try:
        labels = _label_list(labels_text)
        pred = predict(model, video, labels, **timeline)
    except ValueError as e:
        return PageResult(message=f"Cannot score these labels: {e}")
    if pred.error is not None:
        return _unreadable(name, pred.error.replace(str(video), name))
    top = pred.top(top_k)
    detected = pred.detected
    result = PageResult(labels=dict(top), detected=detected,
                        headline=(", ".join(detected) or "nothing detected") if detected is not None
                        else "uncalibrated: no decision")
    result.message = (f"**{name}**: {info.duration:.1f} s, {info.num_frames} frames; {len(pred.labels)} labels; "
                      f"{describe_view(pred)}.")
    folder = Path(workdir or tempfile.mkdtemp(prefix="msqnet-app-"))
    events = events_of(pred, duration=info.duration) if pred.calibrated else None
    if pred.windows:
        png = folder / f"{Path(video).stem}.timeline.png"
        plot_timeline(pred, png, top_k=top_k)
        result.timeline = str(png)
        shown = [label for label, _ in top]
        column = {label: i for i, label in enumerate(pred.labels)}
        result.table_headers = ["start (s)", "end (s)", *shown]
        result.table = [[round(w.start, 2), round(w.end, 2),
                         *(round(float(w.probabilities[column[label]]), 3) for label in shown)]
                        for w in pred.windows]
        step = pred.windows[1].start - pred.windows[0].start if len(pred.windows) > 1 else pred.window_seconds
        result.message += f" Timeline: {len(pred.windows)} windows of {pred.window_seconds:g} s every {step:g} s."
    if events is not None:
        result.events = events
    result.downloads = _write_downloads(pred, events, folder)
    return result


# What every browser plays; other files get a converted preview (the original is what is scored).
_PLAYABLE = (".mp4", ".webm")


def browser_preview(video: str, folder: Path, *, width: int = 480) -> str:
    """``video`` itself when browsers play it, else an H.264 mp4 copy (at most ``width`` px wide) in ``folder``
    to show on the page; the copy is only shown, never scored."""
    if Path(video).suffix.lower() in _PLAYABLE:
        return video
    out = folder / f"{Path(video).stem}.preview.mp4"
    with av.open(video) as src, av.open(str(out), "w", format="mp4") as dst:
        stream = src.streams.video[0]
        rate = stream.average_rate or 25
        w = min(width, stream.codec_context.width) // 2 * 2
        h = max(2, round(stream.codec_context.height * w / stream.codec_context.width) // 2 * 2)
        enc = dst.add_stream("libx264", rate=rate)
        enc.width, enc.height, enc.pix_fmt = w, h, "yuv420p"
        enc.options = {"preset": "ultrafast"}
        for frame in src.decode(stream):
            for packet in enc.encode(frame.reformat(width=w, height=h, format="yuv420p")):
                dst.mux(packet)
        for packet in enc.encode():
            dst.mux(packet)
    return str(out)


# The events panel: each event's time seeks the preview player (clicks on [data-seek] buttons).
_SEEK_JS = """
element.addEventListener('click', (e) => {
  const button = e.target.closest('[data-seek]');
  const player = document.querySelector('#preview video');
  if (button && player) { player.currentTime = parseFloat(button.dataset.seek); }
});
"""


def events_html(events) -> str:
    """The events as a list whose times are buttons that seek the player."""
    if not events:
        return ""
    items = "".join(f'<li><button data-seek="{e.start:.3f}" class="seek">{e.start:.1f} - {e.end:.1f} s</button> '
                    f"{html.escape(e.label)} (peak {e.peak:.2f}, mean {e.mean:.2f})</li>" for e in events)
    return f"<p><b>Events</b> (click a time to play from there)</p><ul>{items}</ul>"


class VisitFolders:
    """A temporary folder per scoring under one root, each removed ``max_age_s`` after it was made (checked
    at every new one) and all of them when the process exits."""

    def __init__(self, max_age_s: float = 3600.0):
        self.root = Path(tempfile.mkdtemp(prefix="msqnet-app-"))
        self.max_age_s = max_age_s
        atexit.register(shutil.rmtree, self.root, ignore_errors=True)

    def new(self) -> Path:
        """A fresh folder for one scoring (old ones cleaned first)."""
        now = time.time()
        for old in self.root.iterdir():
            if now - old.stat().st_mtime > self.max_age_s:
                shutil.rmtree(old, ignore_errors=True)
        return Path(tempfile.mkdtemp(dir=self.root))


def _model_name(source: str) -> str:
    """What the page calls the model: a hub repo id as given, a folder by its name (never a full path)."""
    path = Path(source)
    if not path.exists():
        return source
    folder = path.resolve()
    return folder.parent.name if folder.name in ("best", "run", "last") else folder.name


def _describe(model, source: str) -> str:
    """The page's header: which model, what it scores."""
    cfg = to_dict(model.cfg)
    names = model.class_names
    listed = ", ".join(names[:20]) + (f", ... ({len(names)} in all)" if len(names) > 20 else "")
    kind = ("open vocabulary: type any class names, comma-separated, or leave the box empty for the trained ones"
            if is_open_vocabulary(cfg) else "closed set: it scores only the classes it was trained on")
    return (f"# Try msqnet\n\nModel `{_model_name(source)}` (preset `{cfg['name']}`, {model.cfg.num_frames} frames "
            f"at {model.cfg.image_size} px), {kind}. Its training data, measured quality beside chance and limits "
            f"are in the model card below.\n\nTrained classes: {listed}.")


def _card_text(source: str) -> str:
    """The checkpoint's model card without its YAML metadata block, or a line saying there is none."""
    try:
        text = read_card(source)
    except (OSError, ValueError) as e:
        return f"No model card: {e}"
    if text.startswith("---\n") and "\n---\n" in text[4:]:
        text = text[4:].split("\n---\n", 1)[1]
    return text.replace("path/to/this/folder", _model_name(source))


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
    import gradio as gr  # the optional `app` extra: only `msqnet app` needs it

    visits = VisitFolders()
    open_vocab = is_open_vocabulary(to_dict(model.cfg))

    def preview(video: str | None) -> str | None:
        if not video:
            return None
        try:
            return browser_preview(video, visits.new())
        except (OSError, ValueError):  # not a video: scoring it says so
            return None

    def run(video: str | None, labels_text: str | None) -> tuple[Any, ...]:
        folder = visits.new()
        r = analyse_video(model, video, labels_text, window=window, stride=stride, top_k=top_k, workdir=folder)
        shown = None
        if r.labels:  # gr.Label takes a JSON file to show a headline other than the top label
            shown = str(folder / "label.json")
            Path(shown).write_text(json.dumps({"label": r.headline, "confidences": [
                {"label": k, "confidence": v} for k, v in r.labels.items()]}), encoding="utf-8")
        table = gr.update(value=r.table or None, headers=r.table_headers or None, visible=bool(r.table))
        if not r.labels:
            detected = ""
        elif r.detected is None:
            detected = "**Uncalibrated:** this model has no decision thresholds; the scores are not decisions."
        else:
            detected = "**Detected:** " + (", ".join(r.detected) or "none")
        return (shown, r.message, detected, events_html(r.events),
                gr.update(value=r.timeline, visible=r.timeline is not None), table,
                gr.update(value=r.downloads or None, visible=bool(r.downloads)))

    def explain_label(video: str | None, evt: gr.SelectData) -> tuple[Any, ...]:
        """The clicked label's relevance overlay on the video's test clip (contact sheet and MP4)."""
        hidden = gr.update(value=None, visible=False)
        label = evt.value
        if not video or not isinstance(label, str):
            return "", hidden, hidden
        try:
            png, mp4 = label_overlay(model, video, label, visits.new())
        except (OSError, ValueError) as e:
            return f"Could not explain {label}: {e}", hidden, hidden
        return (f"Where the model looks for **{label}** (Grad-CAM over its test clip; bright: most relevant).",
                gr.update(value=png, visible=True), gr.update(value=mp4, visible=True))

    # Gradio passes the click's SelectData to a parameter annotated with the class itself; under
    # ``from __future__ import annotations`` the annotation is a string it cannot resolve (gr is local).
    explain_label.__annotations__["evt"] = gr.SelectData

    # delete_cache: Gradio's own copies of the files it serves go an hour after they were made, as ours do.
    with gr.Blocks(title="msqnet", analytics_enabled=False, delete_cache=(600, 3600)) as page:
        gr.Markdown(_describe(model, source))
        with gr.Row():
            with gr.Column():
                # The file as given is scored; the player shows it, or a converted copy of formats browsers
                # do not play (AVI, MKV, ...).
                video = gr.File(label="Video file", file_types=list(VIDEO_SUFFIXES), type="filepath", elem_id="video")
                player = gr.Video(label="Preview", interactive=False, elem_id="preview")
                labels = gr.Textbox(label="Class names (comma-separated)", elem_id="labels", visible=open_vocab,
                                    placeholder=", ".join(model.class_names[:8]))
                button = gr.Button("Recognise actions", variant="primary", elem_id="run")
            with gr.Column():
                status = gr.Markdown(elem_id="status")
                detected = gr.Markdown(elem_id="detected")
                top = gr.Label(label="Whole-video labels", num_top_classes=top_k, elem_id="top")
                events = gr.HTML(elem_id="events", js_on_load=_SEEK_JS)
                downloads = gr.File(label="Results (JSON, CSV)", file_count="multiple", visible=False,
                                    interactive=False, elem_id="downloads")
        timeline = gr.Image(label="Timeline", type="filepath", visible=False, elem_id="timeline")
        table = gr.Dataframe(label="Per window", visible=False, interactive=False, elem_id="windows")
        overlay_note = gr.Markdown("Click a label above to see where the model looks for it.", elem_id="overlay-note")
        overlay = gr.Image(label="Where the model looks", type="filepath", visible=False, elem_id="overlay")
        overlay_video = gr.Video(label="Overlaid clip", visible=False, interactive=False, elem_id="overlay-video")
        # Below the results, so a narrow screen (the columns stack) shows the results right under the button.
        if examples:
            gr.Examples(examples=[[e] for e in examples], inputs=[video], label="Example videos",
                        example_labels=[Path(e).name for e in examples])
        with gr.Accordion("Model card", open=False, elem_id="card"):
            gr.Markdown(_card_text(source))
        video.change(preview, inputs=[video], outputs=[player])
        button.click(run, inputs=[video, labels], outputs=[top, status, detected, events, timeline, table, downloads],
                     show_progress="full")
        top.select(explain_label, inputs=[video], outputs=[overlay_note, overlay, overlay_video], show_progress="full")
    return page


def check_address(host: str, port: int) -> None:
    """Refuse an address the page cannot listen on before a model loads, blaming the part at fault: a host
    that does not resolve or is not this machine's (``--host``), or a port in use (``--port``)."""
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
    if window <= 0 or stride <= 0:
        raise ValueError(f"--window and --stride must be > 0 (got {window}, {stride})")
    check_address(host, port)
    videos = _example_videos(examples)
    print(f"msqnet app: loading the model {_model_name(str(checkpoint))} ...", file=sys.stderr, flush=True)
    model = load_model(checkpoint)
    print(f"msqnet app: building the page ({len(videos)} example video(s)) ...", file=sys.stderr, flush=True)
    page = build_app(model, source=str(checkpoint), examples=videos, window=window, stride=stride, top_k=top_k)
    print(f"msqnet app: starting the server on http://{host}:{port}/ ...", file=sys.stderr, flush=True)
    allowed = [str(Path(examples).resolve())] if examples else None
    page.launch(server_name=host, server_port=port, share=False, inbrowser=False, allowed_paths=allowed)
