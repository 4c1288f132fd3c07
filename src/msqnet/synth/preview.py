"""A contact sheet of a generated dataset: one row per class, frames left to right, labels written.

It reads the videos back through the same decoder the training pipeline uses, so what it shows is
what a model gets.
"""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..utils import atomic_write_bytes
from .video import read_video

__all__ = ["pick_examples", "write_preview"]

_TEXT_W = 230


def pick_examples(rows: list[dict[str, str]], classes: list[str]) -> list[tuple[str, dict[str, str]]]:
    """For each class, the clip that shows it most plainly (fewest labels, then fewest actors)."""
    chosen: list[tuple[str, dict[str, str]]] = []
    used: set[str] = set()
    for name in classes:
        candidates = [r for r in rows if name in r["labels"].split(";") and r["id"] not in used]
        if not candidates:
            continue
        best = min(candidates, key=lambda r: (len(r["labels"].split(";")), int(r["num_actors"]), r["id"]))
        used.add(best["id"])
        chosen.append((name, best))
    return chosen


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has only the fixed bitmap font
        return ImageFont.load_default()


def write_preview(out_dir: str | Path, *, split: str = "test_seen", columns: int = 8) -> Path:
    """Write ``out_dir/preview.png`` from ``split`` (falls back to train if it is empty); returns its path."""
    out_dir = Path(out_dir)
    classes = [c["name"] for c in json.loads((out_dir / "classes.json").read_text(encoding="utf-8"))]
    rows: list[dict[str, str]] = []
    for name in (split, "train"):
        with open(out_dir / f"{name}.csv", newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        if rows:
            break
    examples = pick_examples(rows, classes)
    if not examples:
        raise ValueError(f"{out_dir}: no labelled clips to preview")
    first = read_video(out_dir / examples[0][1]["path"])
    t, h, w, _ = first.shape
    cols = min(columns, t)
    picks = [int(i) for i in np.linspace(0, t - 1, cols).round()]
    sheet = Image.new("RGB", (_TEXT_W + cols * (w + 2), len(examples) * (h + 4) + 20), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    title, body = _font(14), _font(11)
    draw.text((4, 3), f"{out_dir.name}: one example per class ({split}); frames {picks}", fill=(0, 0, 0),
              font=body)
    for r, (name, row) in enumerate(examples):
        frames = first if r == 0 else read_video(out_dir / row["path"])
        y = 20 + r * (h + 4)
        for c, i in enumerate(picks):
            sheet.paste(Image.fromarray(frames[i]), (_TEXT_W + c * (w + 2), y))
        draw.text((4, y + 2), name, fill=(150, 0, 0), font=title)
        detail = [f"labels: {row['labels'].replace(';', ', ')}", f"actors: {row['actor_actions'].replace(';', ' | ')}",
                  f"({row['actors'].replace(';', ', ')})", row["id"]]
        wrapped: list[str] = []
        for line in detail:
            while len(line) > 38:
                cut = line.rfind(" ", 0, 38)
                cut = cut if cut > 0 else 38
                wrapped.append(line[:cut])
                line = "  " + line[cut:].lstrip()
            wrapped.append(line)
        for k, line in enumerate(wrapped[: max(1, (h - 18) // 12)]):
            draw.text((4, y + 20 + 12 * k), line, fill=(40, 40, 40), font=body)
    buf = io.BytesIO()
    sheet.save(buf, format="PNG")
    path = out_dir / "preview.png"
    atomic_write_bytes(path, buf.getvalue())
    return path
