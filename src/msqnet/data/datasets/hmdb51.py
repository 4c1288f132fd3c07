"""HMDB51 (Kuehne et al., ICCV 2011): 51 single-label actions, three official train/test splits.

Annotation files (``annotations`` = the folder holding ``testTrainMulti_7030_splits/``, or that
folder itself): ``<class>_test_split{1,2,3}.txt`` with lines ``<video>.avi <id>`` (1 = train,
2 = test, 0 = unused in that split). Class ids are the class names in alphabetical order, as in
``label_map.txt`` (checked against the split files when present). ``fold`` picks the split (1-3,
default 1). ``root`` holds ``<class>/<video>.avi`` (``source: video``, the layout of the
official rar archives once extracted) or frame folders ``<class>/<video stem>/`` (``source: frames``).
Video names keep their ``#()!&[]`` characters.
"""
from __future__ import annotations

import re
from pathlib import Path

from ...config_loader import ConfigError
from ...utils import quote
from ..records import ClipRecord
from .base import DatasetSplit, ProblemLog, fail, read_lines, require_split, resolve_source

__all__ = ["load", "splits"]

SPLITS = ("train", "test")
SPLIT_DIR = "testTrainMulti_7030_splits"
LABEL_MAP = "label_map.txt"
FOLDS = (1, 2, 3)
_SPLIT_ID = {"train": "1", "test": "2"}
_FILE = re.compile(r"^(?P<cls>.+)_test_split(?P<fold>\d+)\.txt$")


def splits(cfg) -> list[str]:
    """HMDB51's splits (of the fold ``cfg.fold``)."""
    return list(SPLITS)


def _split_dir(annotations: Path) -> Path:
    if not annotations.is_dir():
        raise FileNotFoundError(f"{annotations}: HMDB51 annotation folder not found (expected the folder holding {SPLIT_DIR}/)")
    inner = annotations / SPLIT_DIR
    return inner if inner.is_dir() else annotations


def _class_names(split_dir: Path, files: dict[str, Path], classes: str | None) -> list[str]:
    """Alphabetical class names, checked against ``label_map.txt`` or the ``classes`` override."""
    names = sorted(files)
    listing = Path(classes) if classes else next(
        (p for p in (split_dir / LABEL_MAP, split_dir.parent / LABEL_MAP) if p.is_file()), None
    )
    if listing is None:
        return names
    listed = [ln.strip() for ln in read_lines(listing, "class list") if ln.strip()]
    if sorted(listed) != names:
        extra = sorted(set(listed) ^ set(names))
        raise fail(listing, None, f"classes differ from the split files' ({extra[:3]} ...)", f"the {len(names)} classes of {split_dir}")
    return listed


def load(cfg, split: str) -> DatasetSplit:
    """Load the train or test videos of HMDB51 split ``cfg.fold`` (1-3)."""
    require_split("hmdb51", split, SPLITS)
    opts = cfg.format_options()
    fold = 1 if cfg.fold is None else cfg.fold
    if fold not in FOLDS:
        raise ConfigError(f"fold: HMDB51 has splits {list(FOLDS)}, got {fold}")
    split_dir = _split_dir(Path(cfg.annotations))
    files = {}
    for p in split_dir.iterdir():
        m = _FILE.match(p.name)
        if m and int(m.group("fold")) == fold:
            files[m.group("cls")] = p
    if not files:
        raise FileNotFoundError(f"{split_dir}: no <class>_test_split{fold}.txt files")
    class_names = _class_names(split_dir, files, cfg.classes)
    log = ProblemLog(cfg.on_error)
    records: list[ClipRecord] = []
    first: dict[str, tuple[Path, int]] = {}
    want = _SPLIT_ID[split]
    for cid, name in enumerate(class_names):
        file = files[name]
        for line, raw in enumerate(read_lines(file), 1):
            if not raw.strip():
                continue
            video, _, flag = raw.strip().rpartition(" ")
            video = video.strip()
            if not video.endswith(".avi") or flag not in ("0", "1", "2"):
                log.report(file, line, f"bad line {quote(raw.strip())}", "'<video>.avi <0|1|2>'")
                continue
            if video in first:
                f0, l0 = first[video]
                log.report(file, line, f"video {quote(video)} listed twice (first at {f0.name}:{l0})", "each video once per split")
                continue
            first[video] = (file, line)
            if flag != want:
                continue
            rel = f"{name}/{video}" if opts.source == "video" else f"{name}/{video[:-4]}"
            source = resolve_source(cfg.root, rel, log, file, line)
            if source is not None:
                records.append(ClipRecord(video[:-4], source, (cid,), None, None, {"fold": str(fold)}))
    log.summarize(f"hmdb51 split {fold} {split}")
    return DatasetSplit(split, records, class_names, False, None, None, log.problems)
