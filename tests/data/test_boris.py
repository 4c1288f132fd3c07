"""BORIS projects: coded state events become generic-format training clips; a bad project is a clear error."""
from __future__ import annotations

import gzip
import json

import pytest

from msqnet.cli import main
from msqnet.data.boris import BorisError, read_boris_project
from msqnet.data.config import DataConfig
from msqnet.data.datasets import load_split

from ..videos import write_moving_video


def _behaviour(code: str, kind: str = "State event", key: str = "a") -> dict:
    return {"type": kind, "key": key, "code": code, "description": "", "category": "", "modifiers": {},
            "excluded": "", "coding map": "", "color": ""}


def _observation(media: str, events: list, offset: float = 0.0, kind: str = "MEDIA") -> dict:
    """An observation as BORIS 8 saves one (observation_operations.py: new observation from a media file)."""
    return {
        "file": {"1": [media] if kind == "MEDIA" else [], **{str(p): [] for p in range(2, 9)}},
        "type": kind, "date": "2026-11-30T10:00:00", "description": "", "time offset": offset, "events": events,
        "observation time interval": [0, 0], "independent_variables": {}, "visualize_spectrogram": False,
        "visualize_waveform": False, "media_creation_date_as_offset": False, "media_scan_sampling_duration": 0,
        "image_display_duration": 1, "close_behaviors_between_videos": False,
        "media_info": {"length": {media: 6.0}, "fps": {media: 25.0}, "hasVideo": {media: True},
                       "hasAudio": {media: False}, "offset": {"1": 0.0}},
    }


@pytest.fixture
def project(tmp_path):
    """A project in BORIS's layout (format 7.0): two media observations (one with a time offset and a
    subject pair), a point event, overlapping states, and a live observation; media relative to the project."""
    (tmp_path / "videos").mkdir()
    write_moving_video(tmp_path / "videos" / "rats.mp4", 6.0, size=(64, 48))
    write_moving_video(tmp_path / "videos" / "cage.mp4", 6.0, size=(64, 48))
    doc = {
        "time_format": "hh:mm:ss", "project_date": "2026-11-30T10:00:00", "project_name": "rats",
        "project_description": "", "project_format_version": "7.0",
        "subjects_conf": {"0": {"key": "1", "name": "rat 1", "description": ""},
                          "1": {"key": "2", "name": "rat 2", "description": ""}},
        "behaviors_conf": {"0": _behaviour("grooming"), "1": _behaviour("fighting", key="f"),
                           "2": _behaviour("squeak", "Point event", key="s")},
        "observations": {
            # rat 1 grooms 1.0-3.0 s; both fight 2.0-4.5 s (rat 2 START/STOP interleaved); a squeak at 2.5 s.
            "session 1": _observation("videos/rats.mp4", [
                [1.0, "rat 1", "grooming", "", "", 25], [2.0, "rat 1", "fighting", "", "", 50],
                [2.0, "rat 2", "fighting", "", "", 50], [2.5, "rat 2", "squeak", "", "", 62],
                [3.0, "rat 1", "grooming", "", "", 75], [4.5, "rat 1", "fighting", "", "", 112],
                [4.5, "rat 2", "fighting", "", "", 112]]),
            # observation time = media time + 10 s: grooming from media second 0.5 to 2.0
            "session 2": _observation("videos/cage.mp4", [[10.5, "", "grooming", "", "", 12],
                                                          [12.0, "", "grooming", "", "", 50]], offset=10.0),
            "live": _observation("", [[1.0, "", "grooming", "", ""], [2.0, "", "grooming", "", ""]], kind="LIVE"),
        },
        "behavioral_categories": [], "independent_variables": {}, "coding_map": {}, "behaviors_coding_map": [],
        "converters": {},
    }
    path = tmp_path / "rats.boris"
    path.write_text(json.dumps(doc, indent=1))
    return path


def test_state_events_are_paired_start_stop_per_subject_in_media_time(project):
    pj = read_boris_project(project)
    assert pj.behaviours == ["grooming", "fighting"] and pj.skipped == ["live (type LIVE)"]
    s1, s2 = pj.observations
    assert s1.media == project.parent / "videos" / "rats.mp4" and s1.point_events == 1
    assert [(e.behaviour, e.subject, e.start, e.stop) for e in s1.events] == [
        ("grooming", "rat 1", 1.0, 3.0), ("fighting", "rat 1", 2.0, 4.5), ("fighting", "rat 2", 2.0, 4.5)]
    assert [(e.start, e.stop) for e in s2.events] == [(0.5, 2.0)]  # the time offset taken off


def test_import_boris_writes_clips_with_time_spans_the_generic_reader_loads(project, tmp_path, capsys):
    out = tmp_path / "dataset"
    assert main(["data", "import-boris", str(project), "--out", str(out)]) == 0
    assert "4 clips of 2 behaviours from 4 state events in 2 observation(s); skipped live" in capsys.readouterr().out
    split = load_split(DataConfig(format="generic", annotations=str(out)), "train")
    assert split.class_names == ["grooming", "fighting"]
    got = [(r.source.rsplit("_", 1)[-1], [split.class_names[i] for i in r.labels], r.start, r.end)
           for r in split.records]
    # session 1 cut at 1, 2, 3, 4.5: grooming alone, both, fighting alone; session 2: grooming 0.5-2
    assert got == [("rats.mp4", ["grooming"], 1.0, 2.0), ("rats.mp4", ["grooming", "fighting"], 2.0, 3.0),
                   ("rats.mp4", ["fighting"], 3.0, 4.5), ("cage.mp4", ["grooming"], 0.5, 2.0)]
    assert split.records[1].meta["subjects"] == "rat 1;rat 2"


def test_a_gzipped_project_reads_the_same(project, tmp_path):
    gz = tmp_path / "rats.boris.gz"
    gz.write_bytes(gzip.compress(project.read_bytes()))
    assert [o.events for o in read_boris_project(gz).observations] == \
        [o.events for o in read_boris_project(project).observations]


def test_an_unpaired_state_event_is_an_error_naming_the_observation(project):
    doc = json.loads(project.read_text())
    doc["observations"]["session 2"]["events"].pop()
    project.write_text(json.dumps(doc))
    with pytest.raises(BorisError, match="observation 'session 2': state event 'grooming' starts at 10.5 s and never"):
        read_boris_project(project)


def test_a_file_that_is_not_a_boris_project_is_a_one_line_cli_error(tmp_path, capsys):
    bad = tmp_path / "notes.boris"
    bad.write_text('{"hello": 1}')
    assert main(["data", "import-boris", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "not a BORIS project" in capsys.readouterr().err
