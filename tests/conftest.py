"""Shared test fixtures: the read-only ``../shared`` material beside the checkout; the thread count kept."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MSQNET_SHARED", REPO.parent / "shared"))


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """``../shared`` (real annotations, videos, fixtures); skips where it is absent."""
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} not found: the shared fixtures live beside the checkout (CI provides them)")
    return SHARED


@pytest.fixture(scope="session")
def long_action_video(tmp_path_factory) -> Path:
    """A generated 20 s video at 10 fps, still except for one action (a moving square) in seconds 8-10."""
    from .videos import write_one_action_video

    return write_one_action_video(tmp_path_factory.mktemp("long_action") / "long.mp4")


@pytest.fixture(scope="session")
def shared_videos(shared_dir: Path) -> Path:
    """Folder of real video clips in several codecs."""
    return shared_dir / "videos"


def pytest_report_header(config) -> str:
    """The test log's header names the hardware branches this machine takes by itself."""
    from msqnet.hardware import describe

    return f"msqnet hardware: {describe()}"


@pytest.fixture
def restore_threads():
    """Give the later tests back the process's thread count (training sets it)."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)
