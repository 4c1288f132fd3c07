"""Atomic writes: whole files and folders or nothing, with ordinary permissions."""
from __future__ import annotations

import os
import stat

import pytest

from msqnet.utils import FolderMark, atomic_folder, atomic_write_bytes, atomic_write_text

MARK = FolderMark("mark.json", "kind", "test-folder", "a test folder")


def test_atomic_write_replaces_the_file_and_leaves_no_temp(tmp_path):
    path = tmp_path / "sub" / "a.txt"
    atomic_write_text(path, "one")
    atomic_write_text(path, "two")
    assert path.read_text() == "two" and os.listdir(path.parent) == ["a.txt"]


def test_atomic_write_uses_the_umask_not_0600(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_bytes(tmp_path / "b.bin", b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "b.bin").stat().st_mode) == 0o644


def test_a_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "c.txt"
    atomic_write_text(path, "good")
    with pytest.raises(TypeError):
        atomic_write_bytes(path, "not bytes")  # type: ignore[arg-type]
    assert path.read_text() == "good" and os.listdir(tmp_path) == ["c.txt"]


def test_an_atomic_folder_replaces_the_old_one_only_when_complete(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "old.txt").write_text("old")
    (target / "mark.json").write_text('{"kind": "test-folder"}')
    with pytest.raises(RuntimeError):
        with atomic_folder(target, mark=MARK) as staging:
            (staging / "new.txt").write_text("half")
            raise RuntimeError("crash while writing")
    assert sorted(p.name for p in target.iterdir()) == ["mark.json", "old.txt"]
    with atomic_folder(target, mark=MARK) as staging:
        (staging / "new.txt").write_text("new")
    assert sorted(p.name for p in target.iterdir()) == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no staging or old folder left


def test_an_atomic_folder_can_keep_the_one_it_replaces(tmp_path):
    for text in ("first", "second", "third"):
        with atomic_folder(tmp_path / "last", mark=None, previous=tmp_path / "previous") as staging:
            (staging / "f").write_text(text)
    assert (tmp_path / "last" / "f").read_text() == "third" and (tmp_path / "previous" / "f").read_text() == "second"
