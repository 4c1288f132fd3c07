"""Scene backgrounds: a sky or wall above a textured ground plane, props, and drifting clouds.

Everything is painted once per clip with numpy and PIL from the clip's own random stream; a moving
background only scrolls the (wrap-around) sky layer, so the ground, where actors stand and move,
stays fixed and "walking" keeps meaning "moving relative to the ground".
"""
from __future__ import annotations

import colorsys
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

__all__ = ["BackgroundSpec", "sample_background", "BackgroundPainter"]

GROUND_TEXTURES = ("noise", "tiles", "stripes", "grass", "pebbles")


@dataclass(frozen=True)
class BackgroundSpec:
    """What a clip's background looks like; ``seed`` drives every texture detail.

    Args:
        seed: seed of the texture noise and prop placement.
        horizon: height of the horizon as a fraction of the frame, from the top.
        sky: ``"sky"`` (gradient with clouds) or ``"wall"`` (an indoor back wall).
        ground: one of ``GROUND_TEXTURES``.
        drift: horizontal cloud travel over the whole clip, in frame widths (0 = static background).
    """

    seed: int
    horizon: float
    sky: str
    ground: str
    drift: float


def sample_background(rng: np.random.Generator, moving_probability: float) -> BackgroundSpec:
    """Draw a background description; it moves with probability ``moving_probability``."""
    sky = "sky" if rng.random() < 0.7 else "wall"
    moving = sky == "sky" and rng.random() < moving_probability
    drift = float(rng.uniform(0.15, 0.35) * rng.choice([-1, 1])) if moving else 0.0
    return BackgroundSpec(
        seed=int(rng.integers(0, 2**31 - 1)),
        horizon=float(rng.uniform(0.28, 0.45)),
        sky=sky,
        ground=str(rng.choice(GROUND_TEXTURES)),
        drift=drift,
    )


def _rgb(h: float, s: float, v: float) -> np.ndarray:
    return np.asarray(colorsys.hsv_to_rgb(h % 1.0, s, v), dtype=np.float32) * 255.0


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
    """Value noise in [-1, 1] of shape (h, w): a coarse random grid upsampled bicubically."""
    coarse = rng.random((cells, cells)).astype(np.float32)
    img = Image.fromarray((coarse * 255).astype(np.uint8), mode="L").resize((w, h), Image.BICUBIC)
    return np.asarray(img, dtype=np.float32) / 127.5 - 1.0


class BackgroundPainter:
    """Paints a :class:`BackgroundSpec` at ``width`` x ``height`` and hands out per-frame images."""

    def __init__(self, spec: BackgroundSpec, width: int, height: int):
        self.spec = spec
        self.width, self.height = width, height
        rng = np.random.default_rng(spec.seed)
        self.horizon_px = int(round(spec.horizon * height))
        hue = float(rng.random())
        self._static = self._paint_ground(rng, hue)  # (H, W, 3) float32, sky rows filled below
        sky = self._paint_sky(rng, hue)  # (horizon, 2W, 3): twice as wide, to scroll around
        self._sky = sky
        self._static[: self.horizon_px] = sky[:, :width]
        self._mask = np.zeros((height, width), dtype=bool)  # where the scrolling sky shows through
        self._mask[: self.horizon_px] = True
        self._paint_props(rng, hue)
        self._static_u8 = np.clip(self._static, 0, 255).astype(np.uint8)
        self._sky_u8 = np.clip(self._sky, 0, 255).astype(np.uint8)

    # -- painting ---------------------------------------------------------------------------

    def _paint_sky(self, rng: np.random.Generator, hue: float) -> np.ndarray:
        h, w = self.horizon_px, 2 * self.width
        if h == 0:
            return np.zeros((0, w, 3), np.float32)
        sat, val = float(rng.uniform(0.1, 0.45)), float(rng.uniform(0.6, 0.95))
        top = _rgb(hue + float(rng.uniform(-0.1, 0.1)), sat, val * float(rng.uniform(0.75, 1.0)))
        low = _rgb(hue + float(rng.uniform(-0.1, 0.1)), sat * 0.5, min(1.0, val * 1.1))
        t = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
        sky = top * (1 - t) + low * t + np.zeros((1, w, 1), np.float32)
        if self.spec.sky == "wall":
            # Wallpaper: vertical bands or bricks, a skirting board at the bottom.
            x = np.arange(w)[None, :]
            y = np.arange(h)[:, None]
            period = int(rng.integers(6, 16)) * max(1, self.width // 64)
            if rng.random() < 0.5:
                pattern = ((x // period) % 2).astype(np.float32)
            else:
                row = y // period
                pattern = (((x + (row % 2) * period) // (2 * period) + row) % 2).astype(np.float32)
            sky *= (1.0 - 0.12 * pattern)[..., None]
            sky[-max(1, h // 12):] *= 0.6
        else:
            # Clouds: soft light blobs on a wrap-around strip so scrolling never shows a seam.
            cloud = Image.new("L", (w, h), 0)
            draw = ImageDraw.Draw(cloud)
            for _ in range(int(rng.integers(3, 8))):
                cx, cy = rng.uniform(0, w), rng.uniform(0.1, 0.8) * h
                rx, ry = rng.uniform(0.06, 0.18) * self.width, rng.uniform(0.03, 0.08) * self.height
                for dx in (-w, 0, w):
                    draw.ellipse([cx + dx - rx, cy - ry, cx + dx + rx, cy + ry], fill=int(rng.integers(120, 230)))
            cloud = cloud.filter(ImageFilter.BoxBlur(max(1, self.width // 40)))
            alpha = np.asarray(cloud, dtype=np.float32)[..., None] / 255.0
            sky = sky * (1 - alpha) + np.float32(245.0) * alpha
        sky *= 1.0 + 0.05 * _smooth_noise(rng, h, w, 6)[..., None]
        return sky

    def _paint_ground(self, rng: np.random.Generator, hue: float) -> np.ndarray:
        h0, H, W = self.horizon_px, self.height, self.width
        img = np.zeros((H, W, 3), np.float32)
        gh = H - h0
        base = _rgb(hue + float(rng.uniform(0.2, 0.8)), float(rng.uniform(0.12, 0.5)), float(rng.uniform(0.3, 0.75)))
        ground = np.zeros((gh, W, 3), np.float32) + base
        ground *= 1.0 + 0.1 * _smooth_noise(rng, gh, W, 8)[..., None]
        # Perspective coordinates: depth grows towards the horizon, lateral position shrinks with it.
        y = (np.arange(gh, dtype=np.float32)[:, None] + 1.0) / H
        x = (np.arange(W, dtype=np.float32)[None, :] - W / 2) / W
        depth = 1.0 / y
        kind = self.spec.ground
        if kind == "tiles":
            k = float(rng.uniform(2.0, 5.0))
            pattern = (np.floor(x * depth * k * 0.5) + np.floor(depth * k * 0.15)) % 2
            ground *= (1.0 - 0.14 * pattern)[..., None]
        elif kind == "stripes":
            k = float(rng.uniform(0.3, 0.8))
            pattern = np.floor(depth * k) % 2 + 0.0 * x
            ground *= (1.0 - 0.12 * pattern)[..., None]
        ground = np.clip(ground, 0, 255)
        img[h0:] = ground
        if kind in ("grass", "pebbles"):
            pil = Image.fromarray(img.astype(np.uint8))
            draw = ImageDraw.Draw(pil)
            n = int(rng.integers(150, 300)) * (W * H) // (224 * 224)
            ys = h0 + gh * rng.random(n) ** 0.7
            xs = rng.uniform(0, W, n)
            shades = rng.uniform(0.7, 1.3, n)
            for x0, y0, shade in zip(xs, ys, shades):
                near = (y0 - h0) / max(1, gh)  # nearer marks are bigger
                colour = tuple(int(min(255, c * shade)) for c in base)
                if kind == "grass":
                    length = (2 + 8 * near) * H / 224
                    draw.line([(x0, y0), (x0 + rng.uniform(-1, 1) * length * 0.4, y0 - length)], fill=colour,
                              width=max(1, W // 160))
                else:
                    r = (1 + 4 * near) * H / 224
                    draw.ellipse([x0 - r, y0 - r * 0.6, x0 + r, y0 + r * 0.6], fill=colour)
            img = np.asarray(pil, dtype=np.float32).copy()
        return img

    def _paint_props(self, rng: np.random.Generator, hue: float) -> None:
        """Static trees, rocks and far hills near the horizon, painted over the sky mask."""
        H, W, h0 = self.height, self.width, self.horizon_px
        pil = Image.fromarray(np.clip(self._static, 0, 255).astype(np.uint8))
        mask = Image.fromarray(self._mask.astype(np.uint8) * 255, mode="L")
        draw, mdraw = ImageDraw.Draw(pil), ImageDraw.Draw(mask)
        if self.spec.sky == "sky" and rng.random() < 0.6:
            # Far hills: a smooth silhouette resting on the horizon.
            xs = np.linspace(0, W, 9)
            ys = h0 - rng.uniform(0.02, 0.12, 9) * H
            poly = [(0, h0)] + [(float(a), float(b)) for a, b in zip(xs, ys)] + [(W, h0)]
            colour = tuple(int(c) for c in _rgb(hue + 0.3, 0.3, float(rng.uniform(0.35, 0.6))))
            draw.polygon(poly, fill=colour)
            mdraw.polygon(poly, fill=0)
        for _ in range(int(rng.integers(0, 4))):
            px = float(rng.uniform(0, W))
            near = float(rng.uniform(0.0, 0.35))
            base_y = h0 + near * (H - h0)
            s = (0.08 + 0.25 * near) * H
            if rng.random() < 0.5:  # tree: trunk and round crown
                trunk = tuple(int(c) for c in _rgb(0.08, 0.5, float(rng.uniform(0.25, 0.45))))
                crown = tuple(int(c) for c in _rgb(float(rng.uniform(0.2, 0.45)), 0.5, float(rng.uniform(0.3, 0.6))))
                tw = s * 0.08
                shapes = [("rect", [px - tw, base_y - s * 0.6, px + tw, base_y], trunk),
                          ("ellipse", [px - s * 0.3, base_y - s * 1.1, px + s * 0.3, base_y - s * 0.45], crown)]
            else:  # rock
                grey = int(rng.uniform(90, 170))
                shapes = [("ellipse", [px - s * 0.3, base_y - s * 0.25, px + s * 0.3, base_y + s * 0.05],
                           (grey, grey, int(grey * 0.95)))]
            for kind, box, colour in shapes:
                getattr(draw, "rectangle" if kind == "rect" else "ellipse")(box, fill=colour)
                getattr(mdraw, "rectangle" if kind == "rect" else "ellipse")(box, fill=0)
        self._static = np.asarray(pil, dtype=np.float32).copy()
        self._mask = np.asarray(mask) > 0

    # -- frames -----------------------------------------------------------------------------

    def frame(self, u: float) -> Image.Image:
        """The background at clip time ``u`` in [0, 1] as an RGB image (clouds scrolled by ``drift * u``)."""
        if self.spec.drift == 0.0 or self.horizon_px == 0:
            return Image.fromarray(self._static_u8)
        shift = int(round(self.spec.drift * u * self.width)) % self._sky_u8.shape[1]
        sky = np.roll(self._sky_u8, shift, axis=1)[:, : self.width]
        out = self._static_u8.copy()
        rows = out[: self.horizon_px]
        np.copyto(rows, sky, where=self._mask[: self.horizon_px, :, None])
        return Image.fromarray(out)
