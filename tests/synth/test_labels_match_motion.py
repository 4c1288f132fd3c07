"""Labels agree with the motion: every labelled action shows in the actor's stored trajectory, and
an actor without a label does not show that motion (labels are complete, not just plausible).

The checks read the trajectories the generator stores (``meta/trajectories.jsonl``) of a generated
dataset, plus several hundred sampled scenarios at 8 and 16 frames, so every class and body plan is
covered.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from msqnet.synth import CLASS_NAMES, MORPHOLOGIES
from msqnet.synth.generate import SPLITS, SynthConfig, actor_record, sample_split_clip

from .conftest import read_trajectories

PATHS = {"walking", "running", "approaching the camera", "moving away from the camera", "chasing", "following"}


def _sampled_records(frames: int, per_split: int = 70) -> list[dict]:
    """Trajectory records of sampled (not rendered) clips of every split."""
    cfg = SynthConfig(frames=frames, seed=7)
    records = []
    for split in SPLITS:
        for i in range(per_split):
            spec = sample_split_clip(cfg, split, i)
            records.append({
                "id": f"{split}_{i}@{frames}",
                "split": split,
                "labels": list(spec.labels),
                "actors": [actor_record(a, spec.background.horizon) for a in spec.actors],
            })
    return records


@pytest.fixture(scope="module")
def records(tiny_dataset: Path) -> list[dict]:
    return read_trajectories(tiny_dataset) + _sampled_records(8) + _sampled_records(16)


def _a(actor: dict, key: str) -> np.ndarray:
    return np.asarray(actor["track"][key], dtype=np.float64)


def _net(actor: dict) -> float:
    x = _a(actor, "x")
    return float(x[-1] - x[0])


def _reversals(v: np.ndarray) -> int:
    """How often a sequence changes direction."""
    d = np.diff(v)
    d = d[np.abs(d) > 1e-6]
    return int(np.sum(np.sign(d[1:]) != np.sign(d[:-1])))


def _variation(v: np.ndarray) -> float:
    return float(np.abs(np.diff(v)).sum())


def _turns(actor: dict) -> bool:
    f = _a(actor, "facing")
    return bool(f[0] * f[-1] < 0)


def _check_present(name: str, actor: dict) -> None:
    """Assert that ``actor``'s track shows action ``name``."""
    x, scale, y = _a(actor, "x"), _a(actor, "scale"), _a(actor, "y")
    angle, limp, lift = _a(actor, "angle"), _a(actor, "limp"), _a(actor, "lift")
    if name == "walking":
        if _turns(actor):
            assert np.ptp(x) >= 0.08
        else:
            assert 0.2 <= abs(_net(actor)) <= 0.41, "walking translates at walking speed"
    elif name == "running":
        if _turns(actor):
            assert np.ptp(x) >= 0.15
        else:
            assert abs(_net(actor)) >= 0.42, "running translates faster than any walking"
    elif name == "approaching the camera":
        assert scale[-1] >= 1.5 * scale[0] and y[-1] > y[0], "approaching grows and comes down the ground plane"
    elif name == "moving away from the camera":
        assert scale[-1] <= scale[0] / 1.5 and y[-1] < y[0], "moving away shrinks and goes up the ground plane"
    elif name == "jumping":
        assert lift.max() >= 0.4 and lift[0] == 0 and lift[-1] == 0, "jumping rises off the ground and comes back"
    elif name == "falling down":
        assert abs(angle[0]) < 1 and abs(angle[-1]) >= 85 and limp[0] == 0 and limp[-1] == 1
    elif name == "getting up":
        assert abs(angle[0]) >= 85 and abs(angle[-1]) < 1 and limp[0] == 1 and limp[-1] == 0
    elif name == "turning around":
        f = _a(actor, "facing")
        assert f[0] * f[-1] < 0 and abs(f[0]) == abs(f[-1]) == 1, "turning ends facing the other way"
    elif name == "spinning":
        assert _variation(angle) >= 330, "spinning rotates through at least a full turn"
    elif name == "waving":
        swing = _a(actor, "swing")
        assert _a(actor, "limb")[-1] == 1 and np.ptp(swing) >= 40 and _reversals(swing) >= 1
    elif name == "eating":
        head = _a(actor, "head")
        assert np.ptp(head) >= 0.5 and _reversals(head) >= 2, "eating lowers and raises the head repeatedly"
    elif name == "shaking":
        assert _reversals(x) >= 3 and _reversals(angle) >= 3, "shaking moves back and forth repeatedly"
    elif name in ("chasing", "following", "fighting"):
        assert actor["role"], "interaction performers carry their role"
    else:  # pragma: no cover - a new class needs a check here
        raise AssertionError(f"no motion check for class {name!r}")


def _check_absent(actions: set[str], actor: dict) -> None:
    """Assert that ``actor``'s track shows none of the motions it is not labelled with."""
    x, angle = _a(actor, "x"), _a(actor, "angle")
    if not actions & PATHS:
        limit = 0.25 if actions & {"fighting", "shaking"} else 0.06
        assert abs(_net(actor)) < limit, "an actor with no path action stays in place"
    if not actions & {"approaching the camera", "moving away from the camera"}:
        assert np.ptp(_a(actor, "scale")) == 0, "only approaching / moving away change the size"
    if "jumping" not in actions:
        assert _a(actor, "lift").max() == 0
    if not actions & {"falling down", "getting up"}:
        assert np.ptp(_a(actor, "limp")) == 0, "only falling down / getting up go between standing and lying"
    if "turning around" not in actions:
        assert np.ptp(_a(actor, "facing")) == 0
    if "spinning" not in actions:
        assert _variation(angle) < 300
    if not actions & {"waving", "fighting"}:
        assert np.ptp(_a(actor, "swing")) == 0, "a raised limb that is not waving is held still"
    if "eating" not in actions:
        assert np.ptp(_a(actor, "head")) == 0, "a lowered head that is not eating is held still"
    if not actions & {"shaking", "fighting", "turning around"}:
        assert _reversals(x) == 0


def test_every_class_and_body_plan_is_covered_by_the_checks(records: list[dict]) -> None:
    seen = Counter(a for r in records for actor in r["actors"] for a in actor["actions"])
    assert set(seen) == set(CLASS_NAMES)
    bodies = Counter(actor["morphology"] for r in records for actor in r["actors"])
    assert set(bodies) == set(MORPHOLOGIES)


def test_labelled_actions_show_in_the_trajectories(records: list[dict]) -> None:
    for r in records:
        for actor in r["actors"]:
            for name in actor["actions"]:
                try:
                    _check_present(name, actor)
                except AssertionError as e:
                    raise AssertionError(f"{r['id']} {actor['morphology']} labelled {name!r}: {e}") from None


def test_unlabelled_motions_are_absent_from_the_trajectories(records: list[dict]) -> None:
    for r in records:
        for actor in r["actors"]:
            try:
                _check_absent(set(actor["actions"]), actor)
            except AssertionError as e:
                raise AssertionError(f"{r['id']} {actor['morphology']} {actor['actions']}: {e}") from None


def test_clip_labels_are_the_union_of_their_actors_actions(records: list[dict]) -> None:
    for r in records:
        union = {a for actor in r["actors"] for a in actor["actions"]}
        assert r["labels"] == [c for c in CLASS_NAMES if c in union]
        assert 1 <= len(r["actors"]) <= 3 and r["labels"], r["id"]


def _pairs(records: list[dict], interaction: str) -> list[tuple[dict, dict]]:
    out = []
    for r in records:
        members = [a for a in r["actors"] if interaction in a["actions"]]
        if members:
            assert len(members) == 2, f"{r['id']}: {interaction} needs exactly two actors"
            out.append((members[0], members[1]))
    assert out, f"no {interaction} clip sampled"
    return out


def test_a_chaser_runs_behind_the_fleeing_actor_and_closes_in(records: list[dict]) -> None:
    for a, b in _pairs(records, "chasing"):
        chaser, fleeing = (a, b) if a["role"] == "chaser" else (b, a)
        assert fleeing["role"] == "fleeing"
        heading = np.sign(_a(chaser, "facing")[0])
        assert heading == np.sign(_a(fleeing, "facing")[0]), "both run the same way"
        gap = heading * (_a(fleeing, "x") - _a(chaser, "x"))
        assert (gap > 0).all(), "the chaser stays behind"
        assert gap[0] - gap[-1] >= 0.1, "the chaser closes in"
        assert abs(_net(chaser)) >= 0.42 and abs(_net(fleeing)) >= 0.42


def test_a_follower_walks_behind_the_leader_at_a_steady_distance(records: list[dict]) -> None:
    for a, b in _pairs(records, "following"):
        follower, leader = (a, b) if a["role"] == "follower" else (b, a)
        heading = np.sign(_a(follower, "facing")[0])
        assert heading == np.sign(_a(leader, "facing")[0])
        gap = heading * (_a(leader, "x") - _a(follower, "x"))
        assert (gap > 0).all() and abs(gap[-1] - gap[0]) <= 0.05
        assert 0.2 <= abs(_net(follower)) <= 0.41 and 0.2 <= abs(_net(leader)) <= 0.41


def test_fighters_face_each_other_close_by_and_lunge_repeatedly(records: list[dict]) -> None:
    for a, b in _pairs(records, "fighting"):
        xa, xb = _a(a, "x"), _a(b, "x")
        assert np.sign(_a(a, "facing")[0]) == np.sign(xb[0] - xa[0]), "a faces b"
        assert np.sign(_a(b, "facing")[0]) == np.sign(xa[0] - xb[0]), "b faces a"
        assert np.abs(xb - xa).max() < 0.5
        assert _reversals(xa) >= 2 and _reversals(xb) >= 2
