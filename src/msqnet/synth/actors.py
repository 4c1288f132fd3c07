"""Articulated 2-D actors: six body plans (skeletons + shapes), their poses, and how they look.

An actor is drawn side-on, facing +x, in *body units* (the biped is one unit tall), y pointing up and
its feet on y = 0. A morphology is plain data (bones and shapes) plus one function that turns the
per-frame :class:`Pose` parameters (gait phase, raised limb, lowered head, ...) into joint angles, so
every action is performed by every body in its own way: a biped swings its legs, a quadruped trots on
diagonal pairs, a snake sends a wave along its body, a spider steps on alternating tetrapods.

``actor_polygons`` runs forward kinematics and returns coloured polygons in body units;
``render.py`` places, rotates and rasterises them.
"""
from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass, field
from typing import Callable, Literal

import numpy as np

__all__ = [
    "Bone",
    "Shape",
    "Pose",
    "Morphology",
    "Appearance",
    "MORPHOLOGIES",
    "sample_appearance",
    "actor_polygons",
]

Side = Literal[-1, 0, 1]  # far side (behind the body), midline, near side (in front)


@dataclass(frozen=True)
class Bone:
    """A rigid segment, drawn as a tapered capsule unless its radii are zero.

    Args:
        name: unique name; poses address joints by it.
        parent: bone it hangs from (``None``: attached to the body origin, direction +x).
        length: length in body units.
        angle: rest angle in degrees, relative to the parent's direction (counter-clockwise).
        radius: capsule radius at the start and at the end (0, 0 = invisible bone).
        at: where on the parent it starts, as a fraction of the parent's length.
        origin: start point of a root bone, in body units.
        side: far (-1), midline (0) or near (+1); far parts are drawn first and darker.
        paint: colour role (see ``Appearance.colour``).
        limb: whether its length scales with the actor's limb-length factor.
    """

    name: str
    parent: str | None
    length: float
    angle: float
    radius: tuple[float, float] = (0.0, 0.0)
    at: float = 1.0
    origin: tuple[float, float] = (0.0, 0.0)
    side: Side = 0
    paint: str = "body"
    limb: bool = False


@dataclass(frozen=True)
class Shape:
    """An ellipse or polygon fixed in a bone's frame (torso, head, eye, beak, wing).

    A bone's frame has ``a`` along the bone and ``b`` 90 degrees counter-clockwise from it.

    Args:
        bone: the bone it moves with.
        kind: ``"ellipse"`` (centre ``(a, b)``, radii ``rx`` along the bone and ``ry`` across) or
            ``"poly"`` (``points`` as ``(a, b)`` pairs).
        a: centre along the bone, as a fraction of the bone's length.
        b: centre across the bone, in body units.
        patterned: whether the actor's coat pattern (spots, stripes, belly) is drawn on it.
    """

    bone: str
    kind: Literal["ellipse", "poly"]
    a: float = 0.5
    b: float = 0.0
    rx: float = 0.0
    ry: float = 0.0
    points: tuple[tuple[float, float], ...] = ()
    side: Side = 0
    paint: str = "body"
    patterned: bool = False


@dataclass
class Pose:
    """Per-frame body parameters that actions drive (all 0 = standing still, relaxed).

    Args:
        gait_phase: locomotion cycle phase, radians.
        gait_amp: stride size, 0 (standing) .. 1 (running).
        limb: how far the actor's waving limb is raised, 0 .. 1.
        swing: extra angle of the raised limb, degrees (oscillates while waving or striking).
        head: how far the head is lowered to the ground, 0 .. 1 (eating, or a held distractor).
        tuck: legs pulled in / spread for a leap, 0 .. 1.
        limp: limbs relaxed as when lying on the ground, 0 .. 1.
        crouch: body lowered on bent legs, 0 .. 1.
    """

    gait_phase: float = 0.0
    gait_amp: float = 0.0
    limb: float = 0.0
    swing: float = 0.0
    head: float = 0.0
    tuck: float = 0.0
    limp: float = 0.0
    crouch: float = 0.0


PoseFn = Callable[[Pose], dict[str, float]]


@dataclass(frozen=True)
class Morphology:
    """A body plan: skeleton, shapes, pose function and a few facts the motion programs need.

    Args:
        name: e.g. ``"biped"``.
        bones: skeleton, parents before children.
        shapes: ellipses and polygons attached to bones, drawn after the bones of the same side.
        pose: maps a :class:`Pose` to joint-angle offsets in degrees, by bone name.
        extent: body units that map to the actor's nominal on-screen size (so a long snake and a
            tall biped cover similar areas).
        pivot: height of the body centre, the point spinning and falling rotate about.
        fall_angle: rotation in degrees when lying on the ground (90: on its side; 180: on its back).
        description: a short phrase for the datasheet.
    """

    name: str
    bones: tuple[Bone, ...]
    shapes: tuple[Shape, ...]
    pose: PoseFn
    extent: float
    pivot: float
    fall_angle: float
    description: str


def _blend(a: float, b: float, w: float) -> float:
    return a + (b - a) * w


# ---------------------------------------------------------------------------------------------
# Biped: a person-like body; legs swing alternately, arms counter-swing, bows to "eat".
# ---------------------------------------------------------------------------------------------

_BIPED_BONES = (
    Bone("pelvis", None, 0.0, 0.0, origin=(0.0, 0.5)),
    Bone("torso", "pelvis", 0.30, 90.0, (0.07, 0.08), paint="body"),
    Bone("neck", "torso", 0.07, 0.0, (0.035, 0.035), paint="limb"),
    Bone("head", "neck", 0.16, 0.0),
    *(
        b
        for side in (-1, 1)
        for b in (
            Bone(f"thigh{side}", "pelvis", 0.25, -90.0, (0.055, 0.045), side=side, paint="limb", limb=True),
            Bone(f"shin{side}", f"thigh{side}", 0.25, 0.0, (0.045, 0.035), side=side, paint="limb", limb=True),
            Bone(f"foot{side}", f"shin{side}", 0.08, 90.0, (0.03, 0.025), side=side, paint="accent"),
            Bone(f"upperarm{side}", "torso", 0.17, 180.0, (0.04, 0.035), at=0.92, side=side, paint="limb",
                 limb=True),
            Bone(f"forearm{side}", f"upperarm{side}", 0.17, 0.0, (0.035, 0.03), side=side, paint="limb",
                 limb=True),
        )
    ),
)
_BIPED_SHAPES = (
    Shape("torso", "ellipse", a=0.5, rx=0.19, ry=0.11, patterned=True),
    Shape("head", "ellipse", a=0.45, rx=0.085, ry=0.08, paint="accent"),
    Shape("head", "ellipse", a=0.55, b=-0.05, rx=0.018, ry=0.018, paint="eye"),
)


def _biped_pose(p: Pose) -> dict[str, float]:
    """Joint angles of the biped: alternate leg swing, counter-swinging arms, bowing, waving."""
    s = math.sin(p.gait_phase)
    hip, knee = 38.0 * p.gait_amp, 55.0 * p.gait_amp
    out: dict[str, float] = {}
    for side, sign in ((1, 1.0), (-1, -1.0)):
        swing = sign * s  # near and far legs half a cycle apart
        # A knee only bends backwards, most while its leg swings forward.
        out[f"thigh{side}"] = hip * swing + 45.0 * p.tuck + 30.0 * p.crouch
        out[f"shin{side}"] = -knee * max(0.0, math.cos(p.gait_phase + (0 if side == 1 else math.pi))) \
            - 90.0 * p.tuck - 60.0 * p.crouch
        out[f"upperarm{side}"] = -32.0 * p.gait_amp * swing + 35.0 * p.tuck
        out[f"forearm{side}"] = 25.0 * p.gait_amp + 15.0 * p.tuck
    out["torso"] = -12.0 * p.gait_amp - 75.0 * p.head + 10.0 * p.crouch
    out["neck"] = -25.0 * p.head
    # The waving limb is the near arm: raised forward-up, the forearm swinging.
    out["upperarm1"] = _blend(out["upperarm1"], 150.0 + 0.4 * p.swing, p.limb)
    out["forearm1"] = _blend(out["forearm1"], 20.0 + p.swing, p.limb)
    for side in (-1, 1):  # lying: legs straight, arms along the body
        out[f"thigh{side}"] = _blend(out[f"thigh{side}"], 5.0 * side, p.limp)
        out[f"shin{side}"] = _blend(out[f"shin{side}"], -5.0, p.limp)
        out[f"upperarm{side}"] = _blend(out[f"upperarm{side}"], 15.0 * side, p.limp)
    return out


# ---------------------------------------------------------------------------------------------
# Quadruped: a dog/horse-like body; trots on diagonal leg pairs, grazes, paws with a front leg.
# ---------------------------------------------------------------------------------------------

def _quad_leg(name: str, at: float, side: int) -> tuple[Bone, Bone, Bone]:
    return (
        Bone(f"{name}{side}", "spine", 0.21, -90.0, (0.055, 0.045), at=at, side=side, paint="limb", limb=True),
        Bone(f"{name}low{side}", f"{name}{side}", 0.21, 0.0, (0.04, 0.03), side=side, paint="limb", limb=True),
        Bone(f"{name}paw{side}", f"{name}low{side}", 0.05, 90.0, (0.03, 0.03), side=side, paint="accent"),
    )


_QUAD_BONES = (
    Bone("spine", None, 0.72, 0.0, (0.12, 0.12), origin=(-0.36, 0.46)),
    Bone("neck", "spine", 0.24, 55.0, (0.075, 0.06), at=0.95, paint="body"),
    Bone("head", "neck", 0.18, -75.0, (0.06, 0.045)),
    Bone("ear", "head", 0.09, 140.0, (0.025, 0.0), at=0.15, paint="accent"),
    Bone("tail", "spine", 0.26, 160.0, (0.035, 0.015), at=0.0, paint="accent"),
    *(bone for side in (-1, 1) for bone in _quad_leg("front", 0.88, side)),
    *(bone for side in (-1, 1) for bone in _quad_leg("back", 0.1, side)),
)
_QUAD_SHAPES = (
    Shape("spine", "ellipse", a=0.5, rx=0.46, ry=0.17, patterned=True),
    Shape("head", "ellipse", a=0.5, rx=0.13, ry=0.075),
    Shape("head", "ellipse", a=0.35, b=0.035, rx=0.02, ry=0.02, paint="eye"),
)


def _quadruped_pose(p: Pose) -> dict[str, float]:
    """Joint angles of the quadruped: trot on diagonal pairs, neck down to graze, a pawing leg."""
    out: dict[str, float] = {}
    hip = 32.0 * p.gait_amp
    for leg, side, phase in (("front", 1, 0.0), ("back", -1, 0.0), ("front", -1, math.pi), ("back", 1, math.pi)):
        ph = p.gait_phase + phase
        s = math.sin(ph)
        bend = max(0.0, math.cos(ph)) * 45.0 * p.gait_amp
        # Front knees fold backwards, hind hocks forwards.
        knee_sign = -1.0 if leg == "front" else 1.0
        spread = 45.0 * p.tuck * (1.0 if leg == "front" else -1.0)
        out[f"{leg}{side}"] = hip * s + spread + (12.0 if leg == "front" else -12.0) * p.crouch
        out[f"{leg}low{side}"] = knee_sign * (bend + 40.0 * p.crouch) + 0.3 * spread
    out["spine"] = -6.0 * p.gait_amp * math.sin(2 * p.gait_phase) - 12.0 * p.head
    out["neck"] = -95.0 * p.head + 8.0 * p.gait_amp
    out["head"] = 25.0 * p.head
    out["tail"] = 25.0 * p.gait_amp * math.sin(2 * p.gait_phase) + 20.0 * p.tuck
    # The waving limb is the near front leg: lifted forward and pawing.
    out["front1"] = _blend(out["front1"], 95.0 + 0.4 * p.swing, p.limb)
    out["frontlow1"] = _blend(out["frontlow1"], -30.0 + p.swing, p.limb)
    for leg in ("front", "back"):  # lying on its back: legs stiff in the air
        for side in (-1, 1):
            out[f"{leg}{side}"] = _blend(out[f"{leg}{side}"], 10.0 * side, p.limp)
            out[f"{leg}low{side}"] = _blend(out[f"{leg}low{side}"], 0.0, p.limp)
    return out


# ---------------------------------------------------------------------------------------------
# Bird: two thin legs, wings and a beak; hops, flaps one wing to "wave", pecks.
# ---------------------------------------------------------------------------------------------

_BIRD_BONES = (
    Bone("body", None, 0.42, 25.0, origin=(-0.22, 0.4)),
    Bone("neck", "body", 0.12, 45.0, (0.06, 0.05), at=0.9, paint="body"),
    Bone("head", "neck", 0.12, -55.0),
    Bone("tail", "body", 0.22, 165.0, at=0.05),
    *(
        b
        for side in (-1, 1)
        for b in (
            Bone(f"thigh{side}", "body", 0.2, -115.0, (0.03, 0.025), at=0.45, side=side, paint="accent", limb=True),
            Bone(f"shin{side}", f"thigh{side}", 0.2, 0.0, (0.022, 0.018), side=side, paint="accent", limb=True),
            Bone(f"toe{side}", f"shin{side}", 0.09, 75.0, (0.018, 0.012), side=side, paint="accent"),
            Bone(f"wing{side}", "body", 0.34, 185.0, at=0.78, side=side, limb=True),
        )
    ),
)
_BIRD_SHAPES = (
    Shape("body", "ellipse", a=0.5, rx=0.28, ry=0.16, patterned=True),
    Shape("tail", "poly", points=((0.0, 0.04), (1.0, 0.09), (1.0, -0.06), (0.0, -0.04)), paint="limb"),
    Shape("head", "ellipse", a=0.45, rx=0.085, ry=0.08),
    Shape("head", "poly", points=((0.8, 0.03), (1.6, -0.005), (0.8, -0.035)), paint="beak"),
    Shape("head", "ellipse", a=0.55, b=0.025, rx=0.017, ry=0.017, paint="eye"),
    Shape("wing-1", "poly", points=((0.0, 0.06), (0.5, 0.08), (1.0, 0.0), (0.45, -0.07), (0.0, -0.05)),
          side=-1, paint="limb"),
    Shape("wing1", "poly", points=((0.0, 0.06), (0.5, 0.08), (1.0, 0.0), (0.45, -0.07), (0.0, -0.05)),
          side=1, paint="accent"),
)


def _bird_pose(p: Pose) -> dict[str, float]:
    """Joint angles of the bird: quick alternating steps, head bob, flapping wing, pecking."""
    s = math.sin(p.gait_phase)
    out: dict[str, float] = {}
    for side, sign in ((1, 1.0), (-1, -1.0)):
        out[f"thigh{side}"] = 35.0 * p.gait_amp * sign * s + 50.0 * p.tuck + 25.0 * p.crouch
        out[f"shin{side}"] = -40.0 * p.gait_amp * max(0.0, sign * math.cos(p.gait_phase)) \
            - 80.0 * p.tuck - 55.0 * p.crouch
        # Wings flutter when running and spread for a leap.
        out[f"wing{side}"] = 30.0 * max(0.0, p.gait_amp - 0.6) * math.sin(3 * p.gait_phase) - 100.0 * p.tuck
    out["body"] = -10.0 * p.gait_amp - 40.0 * p.head + 8.0 * p.crouch
    out["neck"] = 15.0 * p.gait_amp * math.sin(2 * p.gait_phase) - 75.0 * p.head
    out["head"] = -20.0 * p.head
    out["tail"] = 15.0 * p.head
    # The waving limb is the near wing: raised high and flapping.
    out["wing1"] = _blend(out["wing1"], -75.0 - 0.9 * p.swing, p.limb)
    for side in (-1, 1):
        out[f"thigh{side}"] = _blend(out[f"thigh{side}"], 25.0, p.limp)
        out[f"shin{side}"] = _blend(out[f"shin{side}"], -40.0, p.limp)
    return out


# ---------------------------------------------------------------------------------------------
# Snake: a chain of segments with a raised head; crawls by a wave running along its body.
# ---------------------------------------------------------------------------------------------

_SNAKE_SEGMENTS = 9
_SNAKE_RADII = (0.02, 0.035, 0.05, 0.06, 0.065, 0.065, 0.06, 0.055, 0.05, 0.05)
_SNAKE_BONES = (
    Bone("seg0", None, 0.13, 0.0, (_SNAKE_RADII[0], _SNAKE_RADII[1]), origin=(-0.6, 0.07), paint="body"),
    *(
        Bone(f"seg{i}", f"seg{i - 1}", 0.13, 0.0, (_SNAKE_RADII[i], _SNAKE_RADII[i + 1]),
             paint="accent" if i % 2 else "body")
        for i in range(1, _SNAKE_SEGMENTS)
    ),
    Bone("head", f"seg{_SNAKE_SEGMENTS - 1}", 0.14, 0.0),
)
_SNAKE_SHAPES = (
    Shape("head", "ellipse", a=0.45, rx=0.11, ry=0.065, patterned=True),
    Shape("head", "ellipse", a=0.6, b=0.025, rx=0.018, ry=0.018, paint="eye"),
    Shape("head", "poly", points=((0.95, 0.004), (1.35, 0.02), (1.3, 0.0), (1.35, -0.02), (0.95, -0.004)),
          paint="tongue"),
)
# Rest curve: flat body, the front third reared up like a cobra, head level again.
_SNAKE_REST = {"seg5": 0.0, "seg6": 35.0, "seg7": 30.0, "seg8": -40.0, "head": -25.0}


def _snake_pose(p: Pose) -> dict[str, float]:
    """Joint angles of the snake: a wave travels along the body, the tail rattles, the head strikes."""
    out: dict[str, float] = {}
    for i in range(1, 7):
        # A travelling wave: segment i lags segment i-1, so humps run towards the tail.
        out[f"seg{i}"] = 32.0 * p.gait_amp * math.sin(p.gait_phase + 0.9 * i) \
            + 22.0 * p.tuck * (1.0 if i < 4 else -1.0) + 8.0 * p.limp
    raise_ = 1.0 - 0.8 * p.head - p.limp
    for name, angle in _SNAKE_REST.items():
        out[name] = out.get(name, 0.0) + angle * raise_
    out["seg7"] += -25.0 * p.head
    out["seg8"] += -30.0 * p.head
    out["seg7"] += -10.0 * p.crouch
    # The waving limb is the tail: raised and rattled, the next segment bringing the body back down.
    lift = 70.0 * p.limb + 0.6 * p.swing * p.limb
    out["seg0"] = lift
    out["seg1"] = out.get("seg1", 0.0) - lift * 0.6
    out["seg2"] = out.get("seg2", 0.0) - lift * 0.4
    return out


# ---------------------------------------------------------------------------------------------
# Spider: round abdomen, eight legs; steps on alternating tetrapods, waves its front legs.
# ---------------------------------------------------------------------------------------------

_SPIDER_LEG_ANGLES = (45.0, 75.0, 110.0, 140.0)  # femur angles, front to back
_SPIDER_HIP, _SPIDER_FEMUR, _SPIDER_TIBIA = 0.22, 0.22, 0.48


def _tibia_rest(femur_angle: float) -> float:
    """Knee angle that puts the leg's tip on the ground, reaching outwards (front legs forward)."""
    knee_height = _SPIDER_HIP + _SPIDER_FEMUR * math.sin(math.radians(femur_angle))
    down = math.degrees(math.asin(-knee_height / _SPIDER_TIBIA))  # in (-90, 0): pointing forward-down
    absolute = down if femur_angle < 90 else 180.0 - down
    return absolute - femur_angle


_SPIDER_BONES = (
    Bone("thorax", None, 0.2, 0.0, origin=(-0.02, _SPIDER_HIP)),
    Bone("abdomen", None, 0.34, 190.0, origin=(0.0, _SPIDER_HIP)),
    *(
        b
        for side in (-1, 1)
        for k, ang in enumerate(_SPIDER_LEG_ANGLES)
        for b in (
            Bone(f"femur{side}{k}", "thorax", _SPIDER_FEMUR, ang + 6.0 * side, (0.025, 0.022), at=0.1, side=side,
                 paint="limb", limb=True),
            Bone(f"tibia{side}{k}", f"femur{side}{k}", _SPIDER_TIBIA, _tibia_rest(ang + 6.0 * side),
                 (0.022, 0.012), side=side, paint="limb", limb=True),
        )
    ),
)
_SPIDER_SHAPES = (
    Shape("abdomen", "ellipse", a=0.62, rx=0.23, ry=0.18, patterned=True),
    Shape("thorax", "ellipse", a=0.5, rx=0.13, ry=0.09, paint="accent"),
    Shape("thorax", "ellipse", a=0.85, b=0.04, rx=0.02, ry=0.02, paint="eye"),
    Shape("thorax", "ellipse", a=0.75, b=0.06, rx=0.016, ry=0.016, paint="eye"),
)


def _spider_pose(p: Pose) -> dict[str, float]:
    """Joint angles of the spider: alternating tetrapod gait, front legs up to wave, body dips to eat."""
    out: dict[str, float] = {}
    for side in (-1, 1):
        for k, ang in enumerate(_SPIDER_LEG_ANGLES):
            # Tetrapods: legs 0 and 2 of one side move with legs 1 and 3 of the other side.
            ph = p.gait_phase + (0.0 if (k + (side > 0)) % 2 else math.pi)
            front = ang < 90
            sgn = -1.0 if front else 1.0  # folding a leg means opposite rotations in front and behind
            out[f"femur{side}{k}"] = 22.0 * p.gait_amp * math.sin(ph) + 25.0 * p.tuck * -sgn - 15.0 * p.crouch * sgn
            out[f"tibia{side}{k}"] = 18.0 * p.gait_amp * max(0.0, math.cos(ph)) * sgn + 55.0 * p.tuck * sgn \
                + 35.0 * p.limp * sgn + 20.0 * p.crouch * -sgn
    out["thorax"] = -25.0 * p.head
    out["abdomen"] = -10.0 * p.head + 4.0 * p.gait_amp * math.sin(2 * p.gait_phase)
    # The waving limbs are the two front legs: raised high above the head and swinging.
    for side in (-1, 1):
        out[f"femur{side}0"] = _blend(out[f"femur{side}0"], 35.0 + 0.3 * p.swing, p.limb)
        out[f"tibia{side}0"] = _blend(out[f"tibia{side}0"], 60.0 + p.swing * (1.0 if side > 0 else 0.6), p.limb)
    return out


# ---------------------------------------------------------------------------------------------
# Octopus: a big mantle on five curling tentacles; ripples along, raises a tentacle to wave.
# ---------------------------------------------------------------------------------------------

_OCTO_ARMS = ((-1, -35.0), (-1, 20.0), (0, -8.0), (1, -22.0), (1, 30.0))  # (side, spread from straight down)
_OCTO_RADII = (0.055, 0.045, 0.035, 0.025, 0.014)
_OCTO_BONES = (
    Bone("mantle", None, 0.5, 90.0, origin=(0.0, 0.32)),
    *(
        b
        for j, (side, spread) in enumerate(_OCTO_ARMS)
        for b in (
            Bone(f"arm{j}_0", "mantle", 0.1, 180.0 + spread, (_OCTO_RADII[0], _OCTO_RADII[1]), at=0.05, side=side,
                 paint="limb", limb=True),
            *(
                Bone(f"arm{j}_{i}", f"arm{j}_{i - 1}", 0.1, 0.0, (_OCTO_RADII[i], _OCTO_RADII[i + 1]), side=side,
                     paint="limb", limb=True)
                for i in range(1, 4)
            ),
        )
    ),
)
_OCTO_SHAPES = (
    Shape("mantle", "ellipse", a=0.55, rx=0.3, ry=0.22, patterned=True),
    Shape("mantle", "ellipse", a=0.2, b=-0.13, rx=0.05, ry=0.045, paint="white"),
    Shape("mantle", "ellipse", a=0.2, b=-0.15, rx=0.025, ry=0.025, paint="eye"),
)


def _octopus_pose(p: Pose) -> dict[str, float]:
    """Joint angles of the octopus: rippling tentacles, a raised waving tentacle, mantle bows to eat."""
    out: dict[str, float] = {}
    for j, (side, spread) in enumerate(_OCTO_ARMS):
        curl = 18.0 if spread >= 0 else -18.0  # tips curl outwards
        for i in range(4):
            ripple = 28.0 * p.gait_amp * math.sin(p.gait_phase + 1.1 * i + 1.7 * j)
            out[f"arm{j}_{i}"] = (curl if i else 0.0) * (1.0 - p.tuck) + ripple \
                - 0.6 * spread * p.tuck * (i == 0) + 0.7 * spread * p.limp * (i == 0)
            out[f"arm{j}_{i}"] += (12.0 if spread >= 0 else -12.0) * p.crouch * (i == 0)
    out["mantle"] = -10.0 * p.gait_amp - 70.0 * p.head + 10.0 * p.crouch
    # The waving limb is the front near tentacle: raised up in front of the mantle, whipping.
    j = 4
    out[f"arm{j}_0"] = _blend(out[f"arm{j}_0"], 110.0 + 0.3 * p.swing, p.limb)
    for i in range(1, 4):
        out[f"arm{j}_{i}"] = _blend(out[f"arm{j}_{i}"], 0.45 * p.swing, p.limb)
    return out


MORPHOLOGIES: dict[str, Morphology] = {
    m.name: m
    for m in (
        Morphology("biped", _BIPED_BONES, _BIPED_SHAPES, _biped_pose, 1.0, 0.55, 90.0,
                   "upright two-legged body with arms"),
        Morphology("quadruped", _QUAD_BONES, _QUAD_SHAPES, _quadruped_pose, 1.05, 0.45, 180.0,
                   "four-legged body with neck and tail"),
        Morphology("bird", _BIRD_BONES, _BIRD_SHAPES, _bird_pose, 0.8, 0.45, 90.0,
                   "two thin legs, wings and a beak"),
        Morphology("snake", _SNAKE_BONES, _SNAKE_SHAPES, _snake_pose, 0.95, 0.15, 180.0,
                   "legless segmented body with a reared head"),
        Morphology("spider", _SPIDER_BONES, _SPIDER_SHAPES, _spider_pose, 0.85, 0.3, 180.0,
                   "round body on eight jointed legs"),
        Morphology("octopus", _OCTO_BONES, _OCTO_SHAPES, _octopus_pose, 0.95, 0.45, 90.0,
                   "large mantle on five curling tentacles"),
    )
}


# ---------------------------------------------------------------------------------------------
# Appearance
# ---------------------------------------------------------------------------------------------

Colour = tuple[int, int, int]


@dataclass(frozen=True)
class Appearance:
    """How one actor looks: colours, coat pattern, proportions and size.

    Args:
        primary: main body colour.
        secondary: accent colour (head, paws, pattern).
        pattern: ``"plain"``, ``"spots"``, ``"stripes"`` or ``"belly"``.
        marks: pattern marks as ``(a, b, rx, ry)`` in the patterned shape's unit frame (-1 .. 1).
        limb_scale: limb-length factor.
        girth: body-thickness factor.
        size: on-screen height of the actor's body height at mid depth, as a fraction of the frame.
    """

    primary: Colour
    secondary: Colour
    pattern: str
    marks: tuple[tuple[float, float, float, float], ...] = field(default=())
    limb_scale: float = 1.0
    girth: float = 1.0
    size: float = 0.4

    def colour(self, paint: str, side: int) -> Colour:
        """RGB of a colour role; far-side parts are darker so the two sides read apart."""
        if paint == "eye":
            return (15, 15, 20)
        if paint == "white":
            return (240, 240, 232)
        if paint == "beak":
            return (235, 165, 40)
        if paint == "tongue":
            return (200, 30, 40)
        base = {"body": self.primary, "accent": self.secondary}.get(paint)
        if base is None:  # "limb": a slightly darker primary
            base = tuple(int(c * 0.82) for c in self.primary)  # type: ignore[assignment]
        if side < 0:
            base = tuple(int(c * 0.68) for c in base)  # type: ignore[assignment]
        return base  # type: ignore[return-value]


def _hsv(h: float, s: float, v: float) -> Colour:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, s, v)
    return (round(r * 255), round(g * 255), round(b * 255))


def sample_appearance(rng: np.random.Generator) -> Appearance:
    """Draw a random, saturated colour scheme, coat pattern and proportions for one actor."""
    hue = float(rng.random())
    primary = _hsv(hue, float(rng.uniform(0.45, 0.95)), float(rng.uniform(0.35, 0.95)))
    # The accent is either a contrasting hue or a much lighter/darker shade of the same one.
    if rng.random() < 0.5:
        secondary = _hsv(hue + float(rng.uniform(0.25, 0.75)), float(rng.uniform(0.4, 0.9)), float(rng.uniform(0.4, 1.0)))
    else:
        secondary = _hsv(hue, float(rng.uniform(0.1, 0.5)), float(rng.choice([0.15, 0.95])))
    pattern = str(rng.choice(["plain", "spots", "stripes", "belly"], p=[0.3, 0.25, 0.25, 0.2]))
    marks: list[tuple[float, float, float, float]] = []
    if pattern == "spots":
        for _ in range(int(rng.integers(3, 7))):
            a, b = rng.uniform(-0.6, 0.6, size=2)
            r = float(rng.uniform(0.12, 0.22))
            marks.append((float(a), float(b), r, r * 1.2))
    elif pattern == "stripes":
        n = int(rng.integers(2, 5))
        for a in np.linspace(-0.55, 0.55, n):
            marks.append((float(a), 0.0, 0.09, 0.92 * math.sqrt(max(0.0, 1.0 - a * a))))
    elif pattern == "belly":
        marks.append((0.05, -0.45, 0.8, 0.5))
    return Appearance(
        primary=primary,
        secondary=secondary,
        pattern=pattern,
        marks=tuple(marks),
        limb_scale=float(rng.uniform(0.85, 1.15)),
        girth=float(rng.uniform(0.85, 1.2)),
        size=float(rng.uniform(0.36, 0.48)),
    )


# ---------------------------------------------------------------------------------------------
# Forward kinematics -> polygons
# ---------------------------------------------------------------------------------------------

_CIRCLE = [(math.cos(2 * math.pi * k / 12), math.sin(2 * math.pi * k / 12)) for k in range(12)]
_ELLIPSE = [(math.cos(2 * math.pi * k / 20), math.sin(2 * math.pi * k / 20)) for k in range(20)]

Polygon = tuple[int, Colour, np.ndarray]  # (side, colour, (N, 2) points in body units)


def _capsule(p0: tuple[float, float], p1: tuple[float, float], r0: float, r1: float) -> np.ndarray:
    """Outline of a tapered capsule from p0 (radius r0) to p1 (radius r1), as (N, 2) points."""
    dx, dy = p1[0] - p0[0], p1[1] - p0[1]
    ang = math.atan2(dy, dx)
    pts = []
    # Half circle around p1, then half circle around p0, joined by straight flanks.
    for k in range(7):
        t = ang - math.pi / 2 + math.pi * k / 6
        pts.append((p1[0] + r1 * math.cos(t), p1[1] + r1 * math.sin(t)))
    for k in range(7):
        t = ang + math.pi / 2 + math.pi * k / 6
        pts.append((p0[0] + r0 * math.cos(t), p0[1] + r0 * math.sin(t)))
    return np.asarray(pts)


def _ellipse(cx: float, cy: float, rx: float, ry: float, ang: float) -> np.ndarray:
    """Outline of an ellipse with radius rx along direction ``ang`` (radians), as (N, 2) points."""
    c, s = math.cos(ang), math.sin(ang)
    return np.asarray([(cx + rx * u * c - ry * v * s, cy + rx * u * s + ry * v * c) for u, v in _ELLIPSE])


def actor_polygons(morph: Morphology, look: Appearance, pose: Pose) -> list[Polygon]:
    """Pose the skeleton and return its polygons in body units, in drawing order (far to near)."""
    offsets = morph.pose(pose)
    frames: dict[str, tuple[float, float, float, float]] = {}  # name -> (x0, y0, angle rad, length)
    items: list[tuple[int, int, Colour, np.ndarray]] = []  # (side, order, colour, points)
    for order, bone in enumerate(morph.bones):
        length = bone.length * (look.limb_scale if bone.limb else 1.0)
        if bone.parent is None:
            x0, y0 = bone.origin
            ang = math.radians(bone.angle + offsets.get(bone.name, 0.0))
        else:
            px, py, pang, plen = frames[bone.parent]
            x0, y0 = px + bone.at * plen * math.cos(pang), py + bone.at * plen * math.sin(pang)
            ang = pang + math.radians(bone.angle + offsets.get(bone.name, 0.0))
        frames[bone.name] = (x0, y0, ang, length)
        if bone.radius[0] > 0 or bone.radius[1] > 0:
            x1, y1 = x0 + length * math.cos(ang), y0 + length * math.sin(ang)
            r0, r1 = bone.radius[0] * look.girth, bone.radius[1] * look.girth
            items.append((bone.side, order, look.colour(bone.paint, bone.side), _capsule((x0, y0), (x1, y1), r0, r1)))
    n = len(morph.bones)
    for k, shape in enumerate(morph.shapes):
        x0, y0, ang, length = frames[shape.bone]
        ca, sa = math.cos(ang), math.sin(ang)
        side = shape.side
        colour = look.colour(shape.paint, side)
        if shape.kind == "ellipse":
            girth = look.girth if shape.paint not in ("eye", "white") else 1.0
            cx = x0 + shape.a * length * ca - shape.b * sa
            cy = y0 + shape.a * length * sa + shape.b * ca
            rx, ry = shape.rx * (girth if shape.patterned else 1.0), shape.ry * girth
            items.append((side, n + 3 * k, colour, _ellipse(cx, cy, rx, ry, ang)))
            if shape.patterned and look.pattern != "plain":
                mark_colour = look.colour("accent", side)
                for a, b, mrx, mry in look.marks:
                    mx = cx + a * rx * ca - b * ry * sa
                    my = cy + a * rx * sa + b * ry * ca
                    items.append((side, n + 3 * k + 1, mark_colour, _ellipse(mx, my, mrx * rx, mry * ry, ang)))
        else:
            pts = np.asarray(
                [(x0 + a * length * ca - b * sa, y0 + a * length * sa + b * ca) for a, b in shape.points]
            )
            items.append((side, n + 3 * k, colour, pts))
    items.sort(key=lambda it: (it[0], it[1]))
    return [(side, colour, pts) for side, _, colour, pts in items]
