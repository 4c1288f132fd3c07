"""The action classes and the motion programs that perform them.

A class is defined by motion over time, never by appearance: each one is a *motion program* that
writes an actor's per-frame :class:`Track` (where it is, how it is turned, how its limbs move).
The morphology then decides what that looks like (``actors.py``), so "waving" is an arm for a biped,
a front paw for a quadruped, a wing for a bird and a rattling tail for a snake.

Programs are written in normalised clip time ``u`` in [0, 1], so a clip means the same at 8 or 16
frames; periodic motions keep at least three frames per cycle so they never alias away.

Single frames are made ambiguous on purpose: ``add_distractors`` gives actors *held* poses that look
like one frame of an action (a raised limb held still, a head held low, a frozen stride, lying
still, a tilted body), so only the change over time tells the classes apart.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Callable

import numpy as np

__all__ = [
    "ActionClass",
    "ACTION_CLASSES",
    "CLASS_NAMES",
    "INTERACTIONS",
    "SINGLE_ACTIONS",
    "COMPATIBLE_PAIRS",
    "Track",
    "PROGRAMS",
    "apply_interaction",
    "add_distractors",
    "integrate_x",
]


@dataclass(frozen=True)
class ActionClass:
    """One action class: its label text and how the generator uses it.

    Args:
        name: the class name, plain English (it is the label text for text encoders).
        description: one sentence describing the motion.
        actors: 1 for single-actor actions, 2 for interactions.
        implies: other classes every performer of this one also does (a chase is also running).
    """

    name: str
    description: str
    actors: int = 1
    implies: tuple[str, ...] = ()


ACTION_CLASSES: tuple[ActionClass, ...] = (
    ActionClass("walking", "An animal or person moves steadily sideways across the scene with a slow, regular stride."),
    ActionClass("running", "An animal or person moves quickly across the scene with fast, wide strides."),
    ActionClass("jumping", "An animal or person springs up off the ground into the air and lands again."),
    ActionClass("falling down", "An animal or person suddenly topples over and ends up lying on the ground."),
    ActionClass("getting up", "An animal or person lying on the ground rises back up onto its feet."),
    ActionClass("turning around", "An animal or person turns its body to face the opposite direction."),
    ActionClass("spinning", "An animal or person rotates its whole body round and round in circles."),
    ActionClass("waving", "An animal or person raises a limb and waves it back and forth."),
    ActionClass("eating", "An animal or person repeatedly lowers its head to the ground to peck or graze."),
    ActionClass("approaching the camera",
                "An animal or person comes towards the viewer, growing larger in the picture."),
    ActionClass("moving away from the camera",
                "An animal or person goes away from the viewer, growing smaller in the picture."),
    ActionClass("shaking", "An animal or person shakes its body rapidly from side to side."),
    ActionClass("chasing", "One animal or person runs after another that is fleeing ahead of it.", 2, ("running",)),
    ActionClass("following", "One animal or person walks behind another, keeping the same distance.", 2,
                ("walking",)),
    ActionClass("fighting", "Two animals or people face each other and repeatedly lunge and strike at each other.",
                2),
)
CLASS_NAMES: tuple[str, ...] = tuple(c.name for c in ACTION_CLASSES)
INTERACTIONS: tuple[str, ...] = tuple(c.name for c in ACTION_CLASSES if c.actors == 2)
SINGLE_ACTIONS: tuple[str, ...] = tuple(c.name for c in ACTION_CLASSES if c.actors == 1)

# Actions one actor may do at the same time (they drive different parts of its Track).
COMPATIBLE_PAIRS: frozenset[frozenset[str]] = frozenset(
    frozenset(p)
    for p in (
        ("walking", "waving"), ("walking", "jumping"), ("walking", "turning around"), ("walking", "spinning"),
        ("running", "jumping"), ("running", "turning around"), ("running", "waving"),
        ("approaching the camera", "waving"), ("approaching the camera", "jumping"),
        ("approaching the camera", "spinning"), ("moving away from the camera", "waving"),
        ("moving away from the camera", "jumping"), ("moving away from the camera", "spinning"),
        ("jumping", "waving"), ("jumping", "spinning"), ("jumping", "turning around"),
        ("spinning", "waving"), ("eating", "waving"), ("eating", "turning around"),
        ("shaking", "waving"), ("shaking", "eating"), ("turning around", "waving"),
    )
)


@dataclass
class Track:
    """Per-frame state of one actor over a clip; every array has shape (T,).

    Screen position is derived in ``scene.py``: ``x`` (fraction of the frame width) and ``depth``
    (0 far .. 1 near, which sets the ground line and the size). ``speed`` is along the facing
    direction, in frame widths per clip, and is integrated into ``x`` by :func:`integrate_x`.
    """

    direction: int  # +1: facing right at the start, -1: facing left
    x: np.ndarray
    depth: np.ndarray
    speed: np.ndarray
    dx: np.ndarray  # extra sideways offset in frame widths (shaking, lunges)
    angle: np.ndarray  # in-plane rotation, degrees counter-clockwise
    yaw: np.ndarray  # turn about the vertical axis, degrees (180 = facing the other way)
    lift: np.ndarray  # height above the ground, body units
    gait_phase: np.ndarray
    gait_amp: np.ndarray
    limb: np.ndarray
    swing: np.ndarray
    head: np.ndarray
    tuck: np.ndarray
    limp: np.ndarray
    crouch: np.ndarray
    used: set[str] = field(default_factory=set)  # channels an action drives (distractors keep off)

    @classmethod
    def still(cls, frames: int, direction: int, depth: float) -> "Track":
        """An actor standing still at ``depth``, facing ``direction``."""
        arrays = {f.name: np.zeros(frames) for f in fields(cls) if f.name not in ("direction", "used")}
        arrays["depth"] += depth
        return cls(direction=direction, **arrays)

    @property
    def frames(self) -> int:
        return len(self.x)

    @property
    def facing(self) -> np.ndarray:
        """Signed horizontal facing, (T,): +1 right, -1 left, near 0 while side-on to the camera."""
        return self.direction * np.cos(np.radians(self.yaw))


Program = Callable[[Track, np.random.Generator, np.ndarray, float], None]


def _clock(track: Track) -> np.ndarray:
    return np.linspace(0.0, 1.0, track.frames)


def _cycles(rng: np.random.Generator, lo: float, hi: float, frames: int) -> float:
    """A number of cycles per clip in [lo, hi], capped so each cycle spans at least three frames."""
    return min(float(rng.uniform(lo, hi)), max(1.0, (frames - 1) / 3.0))


def _ramp(u: np.ndarray, start: float, length: float) -> np.ndarray:
    """0 before ``start``, 1 after ``start + length``, linear in between."""
    return np.clip((u - start) / length, 0.0, 1.0)


def _smooth(p: np.ndarray) -> np.ndarray:
    return p * p * (3.0 - 2.0 * p)


def _gait(track: Track, rng: np.random.Generator, amp: float, cycles: float) -> None:
    u = _clock(track)
    track.gait_amp[:] = amp
    track.gait_phase[:] = float(rng.uniform(0, 2 * math.pi)) + 2 * math.pi * cycles * u
    track.used |= {"gait"}


# -- path: where the actor goes ------------------------------------------------------------------

def walking(track: Track, rng: np.random.Generator, u: np.ndarray, fall_angle: float) -> None:
    """Steady sideways translation with a slow stride."""
    track.speed[:] = rng.uniform(0.28, 0.4)
    _gait(track, rng, float(rng.uniform(0.45, 0.6)), _cycles(rng, 1.8, 2.6, track.frames))
    track.used |= {"path"}


def running(track: Track, rng: np.random.Generator, u: np.ndarray, fall_angle: float) -> None:
    """Fast sideways translation with a wide, quick stride."""
    track.speed[:] = rng.uniform(0.6, 0.8)
    _gait(track, rng, float(rng.uniform(0.9, 1.0)), _cycles(rng, 2.8, 3.6, track.frames))
    track.used |= {"path"}


def _depth_walk(track: Track, rng: np.random.Generator, start: float, end: float) -> None:
    u = _clock(track)
    track.depth[:] = start + (end - start) * u
    track.speed[:] = rng.uniform(-0.05, 0.05)  # a little sideways drift, far less than walking
    _gait(track, rng, float(rng.uniform(0.45, 0.6)), _cycles(rng, 1.8, 2.6, track.frames))
    track.used |= {"path", "depth"}


def approaching(track: Track, rng: np.random.Generator, u: np.ndarray, fall_angle: float) -> None:
    """Walks towards the camera: nearer (lower on the ground, larger) from start to end."""
    _depth_walk(track, rng, float(rng.uniform(0.0, 0.1)), float(rng.uniform(0.92, 1.0)))


def moving_away(track: Track, rng: np.random.Generator, u: np.ndarray, fall_angle: float) -> None:
    """Walks away from the camera: farther (higher on the ground, smaller) from start to end."""
    _depth_walk(track, rng, float(rng.uniform(0.92, 1.0)), float(rng.uniform(0.0, 0.1)))


# -- body: how the whole body turns, rises or falls ----------------------------------------------

def jumping(track: Track, rng: np.random.Generator, u: np.ndarray, fall_angle: float) -> None:
    """One or two leaps: a crouch, a parabolic flight with tucked legs, a landing."""
    n = 1 if rng.random() < 0.6 else 2
    length = float(rng.uniform(0.3, 0.42)) if n == 1 else float(rng.uniform(0.28, 0.33))
    starts = [float(rng.uniform(0.1, 0.9 - length))] if n == 1 else [
        float(rng.uniform(0.08, 0.12)), float(rng.uniform(0.55, 0.9 - length))
    ]
    height = float(rng.uniform(0.5, 0.75))
    for a in starts:
        p = (u - a) / length
        inside = (p >= 0) & (p <= 1)
        track.lift[inside] = height * np.sin(np.pi * p[inside])
        track.tuck[inside] = np.sin(np.pi * p[inside]) ** 0.5
        before = (u >= a - 0.1) & (u < a)  # crouch to take off
        track.crouch[before] = 0.7
    track.used |= {"lift", "crouch"}


def falling_down(track: Track, rng: np.random.Generator, u: np.ndarray, fall_angle: float) -> None:
    """Topples over, accelerating, onto its side or back, then lies still."""
    a, length = float(rng.uniform(0.15, 0.55)), float(rng.uniform(0.12, 0.22))
    p = _ramp(u, a, length) ** 2  # gravity: slow start, fast end
    sign = float(rng.choice([-1.0, 1.0]))
    track.angle[:] = sign * fall_angle * p
    track.limp[:] = p
    track.used |= {"angle", "limp"}


def getting_up(track: Track, rng: np.random.Generator, u: np.ndarray, fall_angle: float) -> None:
    """Lies still, then rises smoothly back onto its feet and stays up."""
    a, length = float(rng.uniform(0.2, 0.5)), float(rng.uniform(0.2, 0.3))
    p = _smooth(_ramp(u, a, length))
    sign = float(rng.choice([-1.0, 1.0]))
    track.angle[:] = sign * fall_angle * (1.0 - p)
    track.limp[:] = 1.0 - p
    track.used |= {"angle", "limp"}


def turning_around(track: Track, rng: np.random.Generator, u: np.ndarray, fall_angle: float) -> None:
    """Turns about the vertical axis until it faces the other way."""
    a, length = float(rng.uniform(0.1, 0.45)), float(rng.uniform(0.25, 0.4))
    track.yaw[:] = 180.0 * _smooth(_ramp(u, a, length))
    track.used |= {"yaw"}


def spinning(track: Track, rng: np.random.Generator, u: np.ndarray, fall_angle: float) -> None:
    """Rotates in the picture plane at a steady rate, one to two full turns."""
    turns = min(float(rng.uniform(1.0, 2.0)), (track.frames - 1) / 3.0)
    a = float(rng.uniform(0.0, 0.12))
    length = float(rng.uniform(0.8, 1.0 - a))
    track.angle[:] = float(rng.choice([-1.0, 1.0])) * 360.0 * turns * _ramp(u, a, length)
    track.used |= {"angle"}


def shaking(track: Track, rng: np.random.Generator, u: np.ndarray, fall_angle: float) -> None:
    """Fast side-to-side oscillation of the whole body with a rocking tilt."""
    cycles = _cycles(rng, 3.0, 4.5, track.frames)
    wave = np.sin(2 * math.pi * cycles * u + float(rng.uniform(0, 2 * math.pi)))
    track.dx[:] = float(rng.uniform(0.035, 0.05)) * wave
    track.angle[:] = float(rng.uniform(8.0, 14.0)) * wave
    track.used |= {"angle", "dx"}


# -- limbs -----------------------------------------------------------------------------------------

def waving(track: Track, rng: np.random.Generator, u: np.ndarray, fall_angle: float) -> None:
    """Raises the waving limb and swings it back and forth."""
    cycles = _cycles(rng, 2.0, 3.2, track.frames)
    track.limb[:] = np.clip(u / 0.08, 0.0, 1.0) if rng.random() < 0.5 else 1.0
    track.swing[:] = float(rng.uniform(38.0, 50.0)) * np.sin(2 * math.pi * cycles * u + float(rng.uniform(0, 6.3)))
    track.used |= {"limb"}


def eating(track: Track, rng: np.random.Generator, u: np.ndarray, fall_angle: float) -> None:
    """Lowers the head to the ground and raises it again, two to three times."""
    cycles = _cycles(rng, 2.0, 3.0, track.frames)
    a = float(rng.uniform(0.0, 0.1))
    track.head[:] = np.where(u >= a, 0.5 - 0.5 * np.cos(2 * math.pi * cycles * (u - a)), 0.0)
    track.used |= {"head"}


PROGRAMS: dict[str, Program] = {
    "walking": walking,
    "running": running,
    "jumping": jumping,
    "falling down": falling_down,
    "getting up": getting_up,
    "turning around": turning_around,
    "spinning": spinning,
    "waving": waving,
    "eating": eating,
    "approaching the camera": approaching,
    "moving away from the camera": moving_away,
    "shaking": shaking,
}


# -- interactions ------------------------------------------------------------------------------

def apply_interaction(name: str, a: Track, b: Track, rng: np.random.Generator) -> tuple[float, float]:
    """Drive tracks ``a`` and ``b`` for a two-actor action; returns ``(start_gap, end_gap)``.

    The gap is how far ``b`` is ahead of ``a`` along ``a``'s direction, in frame widths: the
    caller places ``b`` at ``x_a + direction * gap``. Both tracks get the same direction and depth
    for chasing/following; fighters face each other.
    """
    u = _clock(a)
    b.depth[:] = a.depth + float(rng.uniform(-0.03, 0.03))
    if name in ("chasing", "following"):
        b.direction = a.direction
        if name == "chasing":  # both run; the chaser (a) closes in on the fleeing leader (b)
            lead = float(rng.uniform(0.42, 0.55))
            gap0, gap1 = float(rng.uniform(0.3, 0.38)), float(rng.uniform(0.1, 0.15))
            amp, cycles = (0.95, 1.0), (2.8, 3.6)
        else:  # both walk; the follower (a) keeps its distance
            lead = float(rng.uniform(0.26, 0.36))
            gap0 = float(rng.uniform(0.22, 0.3))
            gap1 = gap0 + float(rng.uniform(-0.02, 0.02))
            amp, cycles = (0.45, 0.6), (1.8, 2.6)
        b.speed[:] = lead
        a.speed[:] = lead + (gap0 - gap1)
        for t in (a, b):
            _gait(t, rng, float(rng.uniform(*amp)), _cycles(rng, *cycles, t.frames))
            t.used |= {"path"}
        return gap0, gap1
    if name == "fighting":
        b.direction = -a.direction
        cycles = _cycles(rng, 1.6, 2.4, a.frames)
        phase = float(rng.uniform(0, 2 * math.pi))
        reach = float(rng.uniform(0.08, 0.11))
        gap = float(rng.uniform(0.2, 0.26))
        for k, t in enumerate((a, b)):
            # The two fighters lunge in turn (half a cycle apart) and recoil when struck.
            lunge = np.maximum(0.0, np.sin(2 * math.pi * cycles * u + phase + math.pi * k))
            struck = np.maximum(0.0, np.sin(2 * math.pi * cycles * u + phase + math.pi * (1 - k)))
            t.dx[:] = t.direction * (reach * lunge - 0.35 * reach * struck)
            t.angle[:] = -t.direction * (14.0 * lunge - 8.0 * struck)
            t.limb[:] = 0.35 + 0.65 * lunge
            t.swing[:] = -35.0 + 70.0 * lunge
            t.gait_amp[:] = 0.3 * lunge
            t.gait_phase[:] = 2 * math.pi * cycles * u
            t.used |= {"path", "dx", "angle", "limb", "gait"}
        return gap, gap
    raise ValueError(f"unknown interaction {name!r}; expected one of {list(INTERACTIONS)}")


# -- held poses that mimic single frames of actions --------------------------------------------

def add_distractors(track: Track, rng: np.random.Generator, fall_angle: float, *, idle: bool) -> list[str]:
    """Give an actor held poses on channels its actions leave free; returns their names.

    Each held pose equals one frame of some action (a raised limb = a frame of waving, a lowered
    head = a frame of eating, lying = the end of falling down), but it does not change over time.
    Idle actors also sway gently, so "something moves" alone does not mean "an action happens".
    """
    u = _clock(track)
    p = 0.5 if idle else 0.25
    held: list[str] = []
    if idle:
        track.crouch += 0.12 * (0.5 - 0.5 * np.cos(2 * math.pi * float(rng.uniform(0.5, 1.2)) * u))
    if idle and rng.random() < 0.2:
        track.angle[:] = float(rng.choice([-1.0, 1.0])) * fall_angle
        track.limp[:] = 1.0
        return ["lying still"]
    if "limb" not in track.used and rng.random() < p:
        track.limb[:] = 1.0
        track.swing[:] = float(rng.uniform(-25.0, 25.0))
        held.append("raised limb")
    if "head" not in track.used and rng.random() < p:
        track.head[:] = float(rng.uniform(0.6, 1.0))
        held.append("lowered head")
    if "gait" not in track.used and rng.random() < p:
        track.gait_amp[:] = float(rng.uniform(0.4, 1.0))
        track.gait_phase[:] = float(rng.uniform(0, 2 * math.pi))
        held.append("frozen stride")
    if not track.used & {"crouch", "lift"} and rng.random() < p * 0.6:
        track.crouch[:] = float(rng.uniform(0.5, 0.9))
        held.append("crouch")
    if "angle" not in track.used and rng.random() < p * 0.6:
        track.angle[:] = float(rng.choice([-1.0, 1.0]) * rng.uniform(12.0, 35.0))
        held.append("tilt")
    if "yaw" not in track.used and rng.random() < p * 0.4:
        track.yaw[:] = float(rng.uniform(50.0, 70.0))
        held.append("half turned")
    return held


def integrate_x(track: Track, x0: float) -> None:
    """Set ``track.x`` from its start ``x0``, its speed along the facing direction and ``dx``."""
    u = _clock(track)
    heading = np.sign(track.facing)
    heading[heading == 0] = track.direction
    velocity = track.speed * heading
    # Trapezoidal integration of velocity over clip time.
    steps = 0.5 * (velocity[1:] + velocity[:-1]) * np.diff(u)
    track.x[:] = x0 + np.concatenate([[0.0], np.cumsum(steps)]) + track.dx
