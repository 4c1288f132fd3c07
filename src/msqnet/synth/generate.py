"""Generate the synthetic benchmark: clips in parallel, then splits, annotations and a datasheet.

Layout of ``OUT_DIR`` (the project's generic annotation format, read by
``msqnet.data.datasets.generic``)::

    classes.json            [{"name", "description"}, ...]  (order = class id; the only class list:
                            the generic reader refuses a folder holding classes.txt as well)
    train.csv               id,path,labels,actors,num_actors,actor_actions,background,seed,index
    test_seen.csv           (same columns; labels are ';'-joined class names, '' for none)
    test_unseen_actor.csv
    splits/zero_shot.json   {"seen": [names], "unseen": [names]}
    splits/actors.json      {"seen": [morphologies], "unseen": [morphologies]}
    meta/trajectories.jsonl one line per clip: every actor's per-frame track (kept out of the top
                            folder, where the generic reader would take any *.jsonl for a split)
    datasheet.md            counts, co-occurrence, chance-level mAP
    generator.json          arguments, versions, format version (written last: marks completion)
    videos/<id>.mp4         or frames/<id>/000000.png ... with --format frames
    preview.png             with --preview

Every clip draws from its own random stream, seeded by (seed, split, index), so the output does not
depend on the number of workers; every file is written to a temp name and renamed.
"""
from __future__ import annotations

import csv
import io
import json
import logging
import multiprocessing
import os
import shlex
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import av
import numpy as np
import PIL
from tqdm import tqdm

from .._version import __version__
from ..config_loader import ConfigError
from ..metrics.chance import chance_map
from ..utils import FolderMark, atomic_write_text
from .actions import ACTION_CLASSES, CLASS_NAMES, INTERACTIONS
from .actors import MORPHOLOGIES
from .datasheet import label_matrix, render_datasheet
from .preview import write_preview
from .render import render_clip
from .scene import ActorSpec, ClipSpec, ground_y, sample_clip, screen_scale
from .video import write_frame_folder, write_mp4

__all__ = [
    "FORMAT_VERSION",
    "SPLITS",
    "CSV_COLUMNS",
    "SynthConfig",
    "SynthSummary",
    "generate_dataset",
    "make_clip",
    "clip_rng",
    "sample_split_clip",
    "actor_record",
    "TRAJECTORIES",
]

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
SPLITS = ("train", "test_seen", "test_unseen_actor")
_SPLIT_CODES = {"train": 0, "test_seen": 1, "test_unseen_actor": 2}
CSV_COLUMNS = ("id", "path", "labels", "actors", "num_actors", "actor_actions", "background", "seed", "index")
DEFAULT_UNSEEN_ACTORS = ["bird", "spider"]
DEFAULT_UNSEEN_CLASSES = ["following", "getting up", "moving away from the camera"]
MIN_SIZE = 32
# Frames are rendered whole in memory at size x supersample: at 2048 px and supersample 4 one RGB
# frame is already 200 MB of float work. A larger size is refused up front, not run out of memory.
MAX_SIZE = 2048
# Files and folders a generation writes; --overwrite removes only these.
_OUTPUTS = ("classes.json", *(f"{s}.csv" for s in SPLITS), "datasheet.md", "generator.json",
            "preview.png", "splits", "meta", "videos", "frames")
TRAJECTORIES = "meta/trajectories.jsonl"
# How --overwrite knows a folder is synth's (it never deletes in one that is not): a complete dataset's
# generator.json, or the marker a generation writes first and removes once generator.json is written.
_DONE_MARK = FolderMark("generator.json", "generator", "msqnet.synth", "a dataset written by msqnet synth")
_STARTED_MARK = FolderMark(".msqnet-synth.json", "generator", "msqnet.synth", "an interrupted msqnet synth")


@dataclass
class SynthConfig:
    """Arguments of a generation; everything but ``workers``, ``preview`` and ``overwrite`` shapes the data.

    Args:
        clips: number of train clips.
        test_clips: number of clips in each test split.
        seed: dataset seed (>= 0).
        size: frame width and height in pixels (even, >= 32).
        frames: frames per clip (>= 2).
        fps: frame rate written into the videos.
        format: ``"mp4"`` (H.264 through PyAV) or ``"frames"`` (PNG folders).
        crf: x264 quality; 0 = lossless (decoded frames equal the rendered ones exactly).
        workers: parallel processes; 0 = one per CPU core.
        unseen_actors: morphologies held out of train and test_seen (they make test_unseen_actor).
        unseen_classes: classes held out of train entirely (the zero-shot split).
        moving_background: probability that a clip's clouds drift.
        supersample: render at this multiple of ``size`` and downscale (anti-aliasing).
        preview: also write ``preview.png``, a contact sheet of example clips.
        overwrite: replace an existing dataset in ``out_dir``.
    """

    clips: int = 1500
    test_clips: int = 300
    seed: int = 0
    size: int = 112
    frames: int = 16
    fps: int = 8
    format: Literal["mp4", "frames"] = "mp4"
    crf: int = 0
    workers: int = 0
    unseen_actors: list[str] = field(default_factory=lambda: list(DEFAULT_UNSEEN_ACTORS))
    unseen_classes: list[str] = field(default_factory=lambda: list(DEFAULT_UNSEEN_CLASSES))
    moving_background: float = 0.5
    supersample: int = 2
    preview: bool = False
    overwrite: bool = False

    def __post_init__(self) -> None:
        if self.clips < 1:
            raise ConfigError(f"clips: need at least 1 train clip, got {self.clips}")
        if self.test_clips < 0:
            raise ConfigError(f"test_clips: must be >= 0, got {self.test_clips}")
        if self.seed < 0:
            raise ConfigError(f"seed: must be >= 0, got {self.seed}")
        if not MIN_SIZE <= self.size <= MAX_SIZE or self.size % 2:
            raise ConfigError(f"size: must be an even number of pixels {MIN_SIZE}..{MAX_SIZE} (H.264 4:2:0; frames are "
                              f"rendered whole in memory), got {self.size}")
        if self.frames < 2:
            raise ConfigError(f"frames: an action needs at least 2 frames, got {self.frames}")
        if self.fps < 1:
            raise ConfigError(f"fps: must be >= 1, got {self.fps}")
        if self.format not in ("mp4", "frames"):
            raise ConfigError(f"format: expected 'mp4' or 'frames', got {self.format!r}")
        if not 0 <= self.crf <= 51:
            raise ConfigError(f"crf: expected 0 (lossless) .. 51, got {self.crf}")
        if self.workers < 0:
            raise ConfigError(f"workers: must be >= 0 (0 = one per core), got {self.workers}")
        if not 0.0 <= self.moving_background <= 1.0:
            raise ConfigError(f"moving_background: expected a probability in [0, 1], got {self.moving_background}")
        if not 1 <= self.supersample <= 4:
            raise ConfigError(f"supersample: expected 1 .. 4, got {self.supersample}")
        for name in self.unseen_actors:
            if name not in MORPHOLOGIES:
                raise ConfigError(f"unseen_actors: unknown morphology {name!r}; expected some of {list(MORPHOLOGIES)}")
        if not self.seen_actors:
            raise ConfigError("unseen_actors: at least one morphology must stay seen (train needs actors)")
        for name in self.unseen_classes:
            if name not in CLASS_NAMES:
                raise ConfigError(f"unseen_classes: unknown class {name!r}; expected some of {list(CLASS_NAMES)}")
        seen = self.seen_classes
        if not any(c not in INTERACTIONS for c in seen):
            raise ConfigError("unseen_classes: at least one single-actor class must stay seen")
        for c in ACTION_CLASSES:
            for implied in c.implies:
                if c.name in seen and implied not in seen:
                    raise ConfigError(
                        f"unseen_classes: {c.name!r} is seen but implies {implied!r}, which is unseen; "
                        f"hold out {c.name!r} too or keep {implied!r} seen"
                    )

    @property
    def seen_actors(self) -> list[str]:
        return [m for m in MORPHOLOGIES if m not in self.unseen_actors]

    @property
    def seen_classes(self) -> list[str]:
        return [c for c in CLASS_NAMES if c not in self.unseen_classes]

    def split_sizes(self) -> dict[str, int]:
        """Clips per split (test_unseen_actor is empty when no morphology is held out)."""
        return {
            "train": self.clips,
            "test_seen": self.test_clips,
            "test_unseen_actor": self.test_clips if self.unseen_actors else 0,
        }

    def data_arguments(self) -> dict[str, Any]:
        """The arguments that determine the data (recorded in generator.json)."""
        keys = ("clips", "test_clips", "seed", "size", "frames", "fps", "format", "crf", "unseen_actors",
                "unseen_classes", "moving_background", "supersample")
        return {k: getattr(self, k) for k in keys}

    def command(self) -> str:
        """The ``msqnet synth`` command line that regenerates this dataset."""
        args = ["msqnet", "synth", "OUT_DIR", "--clips", str(self.clips), "--test-clips", str(self.test_clips),
                "--seed", str(self.seed), "--size", str(self.size), "--frames", str(self.frames),
                "--fps", str(self.fps), "--format", self.format, "--crf", str(self.crf),
                "--unseen-actors", ",".join(self.unseen_actors), "--unseen-classes", ",".join(self.unseen_classes),
                "--moving-background", str(self.moving_background), "--supersample", str(self.supersample)]
        return " ".join(shlex.quote(a) for a in args)


@dataclass
class SynthSummary:
    """What a generation produced, and how fast."""

    out_dir: Path
    counts: dict[str, int]
    seconds: float
    workers: int
    bytes_written: int
    chance_map: dict[str, dict[str, float | None]]

    @property
    def clips(self) -> int:
        return sum(self.counts.values())

    @property
    def clips_per_second(self) -> float:
        return self.clips / self.seconds if self.seconds > 0 else float("inf")

    def format(self) -> str:
        """A short human-readable report."""
        lines = [f"wrote {self.clips} clips to {self.out_dir} in {self.seconds:.1f} s "
                 f"({self.clips_per_second:.1f} clips/s, {self.workers} workers, {self.bytes_written / 2**20:.1f} MiB)"]
        for split, n in self.counts.items():
            c = self.chance_map[split]
            chance = "" if c["all"] is None else f"  chance mAP {c['all']:.3f} (seen classes {c['seen'] or 0:.3f})"
            lines.append(f"  {split:<18} {n:>6} clips{chance}")
        return "\n".join(lines)


def clip_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The random stream of one clip; depends only on (seed, split, index)."""
    return np.random.default_rng(np.random.SeedSequence([seed, _SPLIT_CODES[split], index]))


def clip_id(split: str, index: int) -> str:
    return f"{split}_{index:05d}"


def sample_split_clip(cfg: SynthConfig, split: str, index: int) -> ClipSpec:
    """The scenario of clip ``index`` of ``split``: morphologies and classes the split allows."""
    morphs = cfg.unseen_actors if split == "test_unseen_actor" else cfg.seen_actors
    classes = cfg.seen_classes if split == "train" else list(CLASS_NAMES)
    return sample_clip(clip_rng(cfg.seed, split, index), frames=cfg.frames, morphologies=morphs, classes=classes,
                       moving_background=cfg.moving_background)


def _r(values: np.ndarray) -> list[float]:
    return [round(float(v), 4) + 0.0 for v in values]  # + 0.0 turns -0.0 into 0.0


def actor_record(actor: ActorSpec, horizon: float, boxes: np.ndarray | None = None) -> dict[str, Any]:
    """One actor's entry in ``meta/trajectories.jsonl``: what it does and its per-frame state.

    ``x``, ``y`` (its ground point) and ``box`` are fractions of the frame; ``scale`` is its on-screen
    size as a fraction of the frame height; ``angle`` (degrees, counter-clockwise), ``facing``
    (+1 right, -1 left), ``lift`` (jump height in body units) and the pose channels as in ``Track``.
    """
    tr = actor.track
    record: dict[str, Any] = {
        "morphology": actor.morphology,
        "actions": list(actor.actions),
        "role": actor.role,
        "held": list(actor.held),
        "track": {
            "x": _r(tr.x),
            "y": _r(ground_y(tr.depth, horizon)),
            "scale": _r(screen_scale(tr.depth, actor.look)),
            "depth": _r(tr.depth),
            "angle": _r(tr.angle),
            "facing": _r(tr.facing),
            "lift": _r(tr.lift),
            "gait_amp": _r(tr.gait_amp),
            "gait_phase": _r(tr.gait_phase),
            "limb": _r(tr.limb),
            "swing": _r(tr.swing),
            "head": _r(tr.head),
            "tuck": _r(tr.tuck),
            "limp": _r(tr.limp),
            "crouch": _r(tr.crouch),
        },
    }
    if boxes is not None:
        record["box"] = [_r(b) for b in boxes]
    return record


def make_clip(cfg: SynthConfig, out_dir: Path, split: str, index: int) -> dict[str, Any]:
    """Render and write one clip; returns its annotation row and trajectory record."""
    spec = sample_split_clip(cfg, split, index)
    rendered = render_clip(spec, cfg.size, cfg.supersample)
    cid = clip_id(split, index)
    if cfg.format == "mp4":
        rel = f"videos/{cid}.mp4"
        write_mp4(out_dir / rel, rendered.frames, cfg.fps, cfg.crf)
    else:
        rel = f"frames/{cid}"
        write_frame_folder(out_dir / rel, rendered.frames)
    bg = spec.background
    background = f"{bg.sky}/{bg.ground}" + ("/moving" if bg.drift else "")
    row = {
        "id": cid,
        "path": rel,
        "labels": ";".join(spec.labels),
        "actors": ";".join(a.morphology for a in spec.actors),
        "num_actors": str(len(spec.actors)),
        "actor_actions": ";".join("+".join(a.actions) or "idle" for a in spec.actors),
        "background": background,
        "seed": str(cfg.seed),
        "index": str(index),
    }
    actors = [actor_record(a, bg.horizon, rendered.boxes[k]) for k, a in enumerate(spec.actors)]
    trajectory = {"id": cid, "split": split, "frames": cfg.frames, "size": cfg.size, "horizon": round(bg.horizon, 4),
                  "background": background, "labels": list(spec.labels), "actors": actors}
    return {"split": split, "row": row, "trajectory": trajectory}


# -- worker pool ----------------------------------------------------------------------------------

_WORKER: dict[str, Any] = {}


def _init_worker(cfg: SynthConfig, out_dir: str) -> None:
    _WORKER["cfg"], _WORKER["out_dir"] = cfg, Path(out_dir)


def _work(task: tuple[str, int]) -> dict[str, Any]:
    return make_clip(_WORKER["cfg"], _WORKER["out_dir"], *task)


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


# -- output folder ------------------------------------------------------------------------------

def _prepare(out_dir: Path, overwrite: bool) -> None:
    """Create ``out_dir``, refusing to write into a non-empty one unless it is ours and overwrite is set."""
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"{out_dir}: exists and is not a directory")
    if out_dir.is_dir() and any(out_dir.iterdir()):
        if not overwrite:
            raise ConfigError(f"{out_dir}: directory exists and is not empty; pass --overwrite to replace a "
                              "dataset written by msqnet synth, or choose another folder")
        if not (_DONE_MARK.on(out_dir) or _STARTED_MARK.on(out_dir)):
            raise ConfigError(f"{out_dir}: not empty and holds no msqnet synth output (no generator.json written "
                              "by msqnet synth); refusing to overwrite it: choose another folder")
        for p in [out_dir / name for name in (*_OUTPUTS, _STARTED_MARK.file)]:
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            elif p.exists() or p.is_symlink():
                p.unlink()
    (out_dir / "splits").mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / _STARTED_MARK.file, json.dumps({_STARTED_MARK.key: _STARTED_MARK.value}) + "\n")


def _csv_text(rows: list[dict[str, str]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(CSV_COLUMNS), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def _folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def generate_dataset(out_dir: str | os.PathLike, cfg: SynthConfig, *, progress: bool = True) -> SynthSummary:
    """Generate every split of the benchmark into ``out_dir`` and return a summary."""
    out_dir = Path(out_dir)
    _prepare(out_dir, cfg.overwrite)
    (out_dir / ("videos" if cfg.format == "mp4" else "frames")).mkdir(exist_ok=True)
    sizes = cfg.split_sizes()
    tasks = [(split, i) for split in SPLITS for i in range(sizes[split])]
    workers = min(cfg.workers or _cpu_count(), len(tasks))
    start = time.perf_counter()
    bar = tqdm(total=len(tasks), desc="msqnet synth", unit="clip", disable=not progress, dynamic_ncols=True)
    results: list[dict[str, Any]] = []
    if workers <= 1:
        for task in tasks:
            results.append(make_clip(cfg, out_dir, *task))
            bar.update()
    else:
        # fork where the OS has it (as PyTorch's DataLoader does): workers start instantly and need no
        # importable __main__; the workers only use numpy, PIL and PyAV, never the parent's threads.
        methods = multiprocessing.get_all_start_methods()
        ctx = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
        with ctx.Pool(workers, initializer=_init_worker, initargs=(cfg, str(out_dir))) as pool:
            for result in pool.imap(_work, tasks, chunksize=4):
                results.append(result)
                bar.update()
    bar.close()

    by_split = {s: [r for r in results if r["split"] == s] for s in SPLITS}
    _write_annotations(out_dir, cfg, by_split)
    chance = _chance(cfg, by_split)
    _write_datasheet(out_dir, cfg, by_split, chance)
    if cfg.preview:
        write_preview(out_dir)
    # generator.json goes last: its presence marks a complete dataset.
    meta = {
        "generator": _DONE_MARK.value,
        "msqnet_version": __version__,
        "format_version": FORMAT_VERSION,
        "arguments": cfg.data_arguments(),
        "command": cfg.command(),
        "versions": _versions(),
        "counts": {s: len(by_split[s]) for s in SPLITS},
    }
    atomic_write_text(out_dir / "generator.json", json.dumps(meta, indent=2) + "\n")
    (out_dir / _STARTED_MARK.file).unlink()  # generator.json marks the folder as synth's from now on
    seconds = time.perf_counter() - start
    summary = SynthSummary(out_dir, {s: len(by_split[s]) for s in SPLITS}, seconds, workers,
                           _folder_bytes(out_dir), chance)
    log.debug("msqnet synth: %s", summary.format().splitlines()[0])
    return summary


def _versions() -> dict[str, str]:
    return {"numpy": np.__version__, "Pillow": PIL.__version__, "PyAV": av.__version__}


def _write_annotations(out_dir: Path, cfg: SynthConfig, by_split: dict[str, list[dict[str, Any]]]) -> None:
    classes = [{"name": c.name, "description": c.description} for c in ACTION_CLASSES]
    atomic_write_text(out_dir / "classes.json", json.dumps(classes, indent=2) + "\n")
    for split in SPLITS:
        atomic_write_text(out_dir / f"{split}.csv", _csv_text([r["row"] for r in by_split[split]]))
    atomic_write_text(out_dir / "splits" / "zero_shot.json",
                      json.dumps({"seen": cfg.seen_classes, "unseen": list(cfg.unseen_classes)}, indent=2) + "\n")
    atomic_write_text(out_dir / "splits" / "actors.json",
                      json.dumps({"seen": cfg.seen_actors, "unseen": list(cfg.unseen_actors)}, indent=2) + "\n")
    lines = [json.dumps(r["trajectory"], separators=(",", ":")) + "\n" for s in SPLITS for r in by_split[s]]
    atomic_write_text(out_dir / TRAJECTORIES, "".join(lines))


def _chance(cfg: SynthConfig, by_split: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, float | None]]:
    seen_cols = [i for i, c in enumerate(CLASS_NAMES) if c in cfg.seen_classes]
    unseen_cols = [i for i, c in enumerate(CLASS_NAMES) if c in cfg.unseen_classes]
    out = {}
    for split, results in by_split.items():
        y = label_matrix([r["trajectory"]["labels"] for r in results], CLASS_NAMES)
        out[split] = {"all": chance_map(y), "seen": chance_map(y, seen_cols), "unseen": chance_map(y, unseen_cols)}
    return out


def _write_datasheet(out_dir: Path, cfg: SynthConfig, by_split: dict[str, list[dict[str, Any]]],
                     chance: dict[str, dict[str, float | None]]) -> None:
    splits = {
        s: [{"labels": r["trajectory"]["labels"], "actors": [a["morphology"] for a in r["trajectory"]["actors"]],
             "background": r["trajectory"]["background"]} for r in results]
        for s, results in by_split.items()
    }
    text = render_datasheet(
        command=cfg.command(),
        versions={"msqnet": __version__, **_versions()},
        classes=[(c.name, c.description) for c in ACTION_CLASSES],
        unseen_classes=cfg.unseen_classes,
        morphologies=[(m.name, m.description) for m in MORPHOLOGIES.values()],
        unseen_actors=cfg.unseen_actors,
        splits=splits,
        chance=chance,
    )
    atomic_write_text(out_dir / "datasheet.md", text)
