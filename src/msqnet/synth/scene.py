"""One clip's scenario: which actors, doing what, where, on which background.

``sample_clip`` draws everything from the clip's own random stream, so a clip depends only on
(dataset seed, split, index) and never on how many workers render it. The resulting
:class:`ClipSpec` is plain data: ``render.py`` turns it into frames and ``generate.py`` writes its
labels and trajectories.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .actions import (
    ACTION_CLASSES,
    CLASS_NAMES,
    COMPATIBLE_PAIRS,
    INTERACTIONS,
    PROGRAMS,
    SINGLE_ACTIONS,
    Track,
    add_distractors,
    apply_interaction,
    integrate_x,
)
from .actors import MORPHOLOGIES, Appearance, Pose, actor_polygons, sample_appearance
from .background import BackgroundSpec, sample_background

__all__ = ["ActorSpec", "ClipSpec", "sample_clip", "ground_y", "screen_scale"]

_IMPLIES = {c.name: c.implies for c in ACTION_CLASSES}
_ROLES = {"chasing": ("chaser", "fleeing"), "following": ("follower", "leader"), "fighting": ("fighter", "fighter")}
_PATHS = {"walking", "running"}
ACTOR_COUNTS, ACTOR_COUNT_P = (1, 2, 3), (0.3, 0.4, 0.3)


@dataclass
class ActorSpec:
    """One actor of a clip.

    Args:
        morphology: key of ``MORPHOLOGIES``.
        look: its appearance.
        actions: class names it performs (implied ones included), in class order.
        role: part in an interaction (``"chaser"``, ``"fleeing"``, ``"follower"``, ``"leader"``,
            ``"fighter"``) or ``""``.
        held: held distractor poses (not actions; see ``actions.add_distractors``).
        track: its per-frame state.
    """

    morphology: str
    look: Appearance
    actions: tuple[str, ...]
    role: str
    held: tuple[str, ...]
    track: Track


@dataclass
class ClipSpec:
    """Everything needed to render one clip and to label it."""

    frames: int
    background: BackgroundSpec
    actors: list[ActorSpec]

    @property
    def labels(self) -> tuple[str, ...]:
        """The clip's label set: the union of its actors' actions, in class order."""
        present = {a for actor in self.actors for a in actor.actions}
        return tuple(c for c in CLASS_NAMES if c in present)


def ground_y(depth: np.ndarray, horizon: float) -> np.ndarray:
    """Screen y (fraction of frame height) of the ground point at ``depth`` (0 far .. 1 near)."""
    return horizon + (0.97 - horizon) * (0.25 + 0.75 * depth)


def screen_scale(depth: np.ndarray, look: Appearance) -> np.ndarray:
    """On-screen size (fraction of frame height) of an actor's nominal extent at ``depth``."""
    return look.size * (0.6 + 0.6 * depth)


@functools.lru_cache(maxsize=None)
def _body_width(morphology: str) -> float:
    """Width of the resting body in body units, for spacing actors apart."""
    morph = MORPHOLOGIES[morphology]
    look = Appearance((0, 0, 0), (0, 0, 0), "plain")
    pts = np.concatenate([p for _, _, p in actor_polygons(morph, look, Pose())])
    return float(pts[:, 0].max() - pts[:, 0].min())


def _half_width(actor: ActorSpec) -> float:
    """Largest half-width over the clip, as a fraction of the frame width (square frames)."""
    morph = MORPHOLOGIES[actor.morphology]
    scale = float(screen_scale(actor.track.depth, actor.look).max())
    return 0.5 * _body_width(actor.morphology) * actor.look.limb_scale * scale / morph.extent


def _pick_actions(rng: np.random.Generator, pool: Sequence[str]) -> list[str]:
    """One action, plus a compatible second one a third of the time."""
    first = str(rng.choice(pool))
    partners = [b for b in pool if frozenset((first, b)) in COMPATIBLE_PAIRS]
    if partners and rng.random() < 0.35:
        return [first, str(rng.choice(partners))]
    return [first]


def sample_clip(
    rng: np.random.Generator,
    *,
    frames: int,
    morphologies: Sequence[str],
    classes: Sequence[str],
    moving_background: float = 0.5,
) -> ClipSpec:
    """Draw a clip: 1-3 actors of ``morphologies`` doing actions from ``classes`` (>= 1 label)."""
    n = int(rng.choice(ACTOR_COUNTS, p=ACTOR_COUNT_P))
    background = sample_background(rng, moving_background)
    morphs = [str(rng.choice(list(morphologies))) for _ in range(n)]
    looks = [sample_appearance(rng) for _ in range(n)]
    tracks = [Track.still(frames, int(rng.choice([-1, 1])), float(rng.uniform(0.15, 0.85))) for _ in range(n)]
    plans: list[list[str]] = [[] for _ in range(n)]
    roles = [""] * n

    interactions = [c for c in INTERACTIONS if c in classes]
    singles = [c for c in SINGLE_ACTIONS if c in classes]
    pair: tuple[int, int] | None = None
    if n >= 2 and interactions and rng.random() < 0.45:
        name = str(rng.choice(interactions))
        pair = (0, 1)
        for k in pair:
            plans[k] = [name, *_IMPLIES[name]]
            roles[k] = _ROLES[name][k]
    for i in range(n):
        if pair and i in pair:
            continue
        others_act = any(plans[j] for j in range(n) if j != i)
        if (others_act and rng.random() < 0.25) or not singles:
            continue  # an idle bystander
        plans[i] = _pick_actions(rng, singles)
    if not any(plans):
        plans[0] = _pick_actions(rng, singles)

    # Two independent walkers/runners heading the same way would look like a chase: keep them
    # heading apart. Same for a bystander walking alongside a chase or a follow.
    lanes: list[int] = []
    if pair and plans[0][0] in ("chasing", "following"):
        lanes.append(tracks[0].direction)
    for i in range(n):
        if (pair and i in pair) or not _PATHS & set(plans[i]):
            continue
        if lanes:
            tracks[i].direction = -lanes[0]
        lanes.append(tracks[i].direction)

    gaps = (0.0, 0.0)
    for i in range(n):
        morph = MORPHOLOGIES[morphs[i]]
        u = np.linspace(0.0, 1.0, frames)
        for name in plans[i]:
            if name in PROGRAMS and not (pair and i in pair):
                PROGRAMS[name](tracks[i], rng, u, morph.fall_angle)
    if pair:
        a, b = pair
        gaps = apply_interaction(plans[a][0], tracks[a], tracks[b], rng)
    actors: list[ActorSpec] = []
    for i in range(n):
        held = add_distractors(tracks[i], rng, MORPHOLOGIES[morphs[i]].fall_angle, idle=not plans[i])
        actions = tuple(c for c in CLASS_NAMES if c in plans[i])
        actors.append(ActorSpec(morphs[i], looks[i], actions, roles[i], tuple(held), tracks[i]))
    _layout(rng, actors, pair, gaps)
    return ClipSpec(frames=frames, background=background, actors=actors)


def _layout(
    rng: np.random.Generator, actors: list[ActorSpec], pair: tuple[int, int] | None, gaps: tuple[float, float]
) -> None:
    """Choose start positions: keep each actor's path in view and spread actors across the frame."""
    units: list[list[int]] = [[i] for i in range(len(actors)) if not (pair and i in pair)]
    if pair:
        units.insert(0, list(pair))
    centres: list[float] = []
    for unit in units:
        first = actors[unit[0]].track
        integrate_x(first, 0.0)
        if len(unit) == 2:
            second = actors[unit[1]]
            # Interacting actors must not start inside each other.
            min_gap = _half_width(actors[unit[0]]) + _half_width(second)
            g0, g1 = gaps
            if actors[unit[0]].role == "fighter":
                g0 = g1 = max(g0, 0.75 * min_gap)  # close enough that lunges make contact
            else:
                shift = max(0.0, 0.8 * min_gap - g1)
                g0, g1 = g0 + shift, g1 + shift
                first.speed[:] = second.track.speed + (g0 - g1)
                integrate_x(first, 0.0)
            integrate_x(second.track, first.direction * g0)
        lo = min(float((actors[i].track.x - _half_width(actors[i])).min()) for i in unit)
        hi = max(float((actors[i].track.x + _half_width(actors[i])).max()) for i in unit)
        low, high = 0.02 - lo, 0.98 - hi
        if low > high:
            offset = 0.5 * (low + high)
        else:
            candidates = rng.uniform(low, high, size=8)
            mids = [0.5 * (lo + hi) + c for c in candidates]
            score = [min((abs(m - c) for c in centres), default=0.0) for m in mids]
            k = int(np.argmax(score)) if centres else 0
            offset = float(candidates[k])
            centres.append(mids[k])
        for i in unit:
            actors[i].track.x += offset
