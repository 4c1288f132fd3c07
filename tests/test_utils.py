"""Atomic writes: whole files or nothing, with ordinary permissions."""
from __future__ import annotations

import os
import stat

import pytest

from msqnet.utils import atomic_write_bytes, atomic_write_text


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
