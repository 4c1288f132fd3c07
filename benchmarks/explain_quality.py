"""How faithful are the explanations (``msqnet.inference.explain``)? Measured against the synthetic benchmark's truth.

On the demo's trained model and the test splits, with every actor's per-frame box and actions from
``meta/trajectories.jsonl``:

* **pointing game**: for every (clip, true label) whose label some actors of the clip perform and others do
  not, does the peak of the label's map (over the whole clip) fall inside the box, on the peak's frame, of
  an actor that performs it? Hit rate per method, beside a uniformly random point (its exact expected hit
  rate: the performers' share of the frame) and the centre of the largest actor's box (the shortcut); for a
  ``pooling: spatiotemporal`` model also the raw cross-attention's peak token (the centre of its cell), and
  where the query's attention goes: its share on the performers' tokens, on the other actors' and on the
  background, beside each region's share of the tokens.
* **deletion**: the label's probability as the most relevant tokens are masked first (grey pixels over the
  token's cells, 0 to 100 % in tenths), against the same masking in random order; area under each curve
  (lower: the map found what the score depends on), over every (clip, true label).
* **time**: the synthetic actors never leave the frame, so partial visibility is built: a clip carrying the
  label is shown for a random run of 2 to T-2 of its frames and a clip without it (the next one in the split)
  for the rest. Does the label's temporal relevance peak inside the run, beside chance (run length / T)?
  Methods: ``rollout``, ``gradcam`` and the raw decoder cross-attention.

Writes ``OUT/explain_quality.json`` and prints the tables.

    msqnet demo                                    # the data (data/synth) and the model (runs/demo/run)
    python benchmarks/explain_quality.py --checkpoint runs/demo/run --data data/synth
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

SPLITS = ("test_seen", "test_unseen_actor")
STEPS = 11  # deletion: 0, 10, ..., 100 % of the tokens masked
GREY = 127


def crop_boxes(boxes: np.ndarray, height: int, width: int, short_side: int, size: int) -> np.ndarray:
    """Boxes (..., 4) as fractions of the source frame -> pixels of the model's S x S centre crop."""
    scale = short_side / min(height, width)
    w, h = width * scale, height * scale
    ox, oy = (w - size) / 2, (h - size) / 2
    return np.stack([boxes[..., 0] * w - ox, boxes[..., 1] * h - oy, boxes[..., 2] * w - ox, boxes[..., 3] * h - oy], -1)


def inside(box: np.ndarray, y: float, x: float) -> bool:
    """Whether pixel (y, x) (its centre) lies in ``box`` (x0, y0, x1, y1)."""
    return bool(box[0] <= x + 0.5 <= box[2] and box[1] <= y + 0.5 <= box[3])


def covered_fraction(boxes: list[np.ndarray], size: int) -> float:
    """Share of the S x S crop's pixels inside any of ``boxes``: a random point's chance of a hit."""
    mask = np.zeros((size, size), bool)
    centres = np.arange(size) + 0.5
    for b in boxes:
        mask |= (centres[None, :] >= b[0]) & (centres[None, :] <= b[2]) & (centres[:, None] >= b[1]) & (centres[:, None] <= b[3])
    return float(mask.mean())


def mask_tokens(clip, order: np.ndarray, grid: tuple[int, int, int], steps: int = STEPS):
    """Clips (steps, T, 3, S, S) with the first k/(steps-1) of ``order`` (token indices of the (T', h, w) grid) grey."""
    import torch

    tt, gh, gw = grid
    t, _, s, _ = clip.shape
    ft, fy, fx = t // tt, s // gh, s // gw
    out = clip.unsqueeze(0).repeat(steps, 1, 1, 1, 1)
    for k in range(1, steps):
        for token in order[: round(len(order) * k / (steps - 1))]:
            i, rest = divmod(int(token), gh * gw)
            y, x = divmod(rest, gw)
            out[k, i * ft : (i + 1) * ft, :, y * fy : (y + 1) * fy, x * fx : (x + 1) * fx] = GREY
    return out if clip.dtype == torch.uint8 else out.float()


def cross_attention_peak(cross: np.ndarray, num_frames: int, size: int) -> tuple[int, float, float]:
    """``(frame, y, x)`` in frame pixels of the centre of the largest token of a (T', h, w) cross-attention map."""
    tt, gh, gw = cross.shape
    t, i, j = np.unravel_index(int(np.argmax(cross)), cross.shape)
    return int(t) * (num_frames // tt), (i + 0.5) * size / gh - 0.5, (j + 0.5) * size / gw - 0.5


def attention_shares(cross: np.ndarray, doers: list[np.ndarray], others: list[np.ndarray], frames: list[int],
                     size: int) -> dict[str, float]:
    """Where a (T', h, w) cross-attention's weight lies: tokens whose cell centre is on a performer, on another
    actor or on neither, per frame's boxes (``frames``: the source frame of each of the T frames), and those
    regions' shares of the tokens (what uniform attention would give)."""
    tt, gh, gw = cross.shape
    weight, area = {"performers": 0.0, "other actors": 0.0, "background": 0.0}, {"performers": 0, "other actors": 0, "background": 0}
    for t in range(tt):
        f = frames[t * (len(frames) // tt)]
        for i in range(gh):
            for j in range(gw):
                y, x = (i + 0.5) * size / gh - 0.5, (j + 0.5) * size / gw - 0.5
                region = ("performers" if any(inside(b[f], y, x) for b in doers)
                          else "other actors" if any(inside(b[f], y, x) for b in others) else "background")
                weight[region] += float(cross[t, i, j])
                area[region] += 1
    total = sum(area.values())
    return {**{f"attention on {k}": v for k, v in weight.items()}, **{f"tokens on {k}": area[k] / total for k in area}}


def auc(curve: np.ndarray) -> float:
    """Area under a curve sampled evenly on [0, 1]."""
    x = np.linspace(0, 1, len(curve))
    return float(np.sum((curve[1:] + curve[:-1]) / 2 * np.diff(x)))


def evaluate_split(model, data: Path, split: str, records: dict, limit: int | None, seed: int) -> dict:
    """The three measurements on one test split."""
    import torch

    from msqnet.data.decode import probe
    from msqnet.data.views import read_test_clips
    from msqnet.engine.inference import score_clips
    from msqnet.inference.explain import METHODS, explain_clip, explanation_view

    rng = np.random.default_rng(seed)
    view, T, S = explanation_view(model), model.cfg.num_frames, model.cfg.image_size
    short = view.resize_to(S)
    ids = [r for r in records if records[r]["split"] == split][:limit]
    spatial_memory = model.cfg.pooling == "spatiotemporal"  # the cross-attention is a (T', h, w) map itself
    point = {m: [] for m in (*METHODS, *(["cross-attention"] if spatial_memory else []), "random point", "largest actor")}
    shares: list[dict[str, float]] = []  # spatial memory: where each pointing case's query attention lies
    deletion = {m: [] for m in (*METHODS, "random order")}
    temporal = {m: [] for m in (*METHODS, "cross-attention", "chance")}
    clips: dict[str, torch.Tensor] = {}
    peakedness: list[float] = []  # what the queries attend to: the largest cross-attention weight over the memory
    same_map = {m: [] for m in METHODS}  # how alike two labels' maps of one clip are (correlation)
    for cid in ids:
        rec = records[cid]
        path = data / "videos" / f"{cid}.mp4"
        info = probe(path)
        clip = read_test_clips(path, view, num_frames=T, size=S)[0]  # (T, 3, S, S) uint8
        clips[cid] = clip
        frames = view.frame_indices(info.num_frames, T)
        labels = list(rec["labels"])
        results = explain_clip(model, clip, labels)
        boxes = {k: crop_boxes(np.array(a["box"]), info.height, info.width, short, S) for k, a in enumerate(rec["actors"])}
        areas = {k: np.mean([(b[f, 2] - b[f, 0]) * (b[f, 3] - b[f, 1]) for f in frames]) for k, b in boxes.items()}
        largest = max(areas, key=areas.get)
        peakedness += [float(x.cross_attention.max()) for x in results[METHODS[0]]]
        uniform = 1 / results[METHODS[0]][0].cross_attention.size  # 1 / M, M = T' or T' x h x w
        for method in METHODS:
            if len(labels) > 1:
                a, b = (results[method][c].tokens.ravel() for c in (0, 1))
                same_map[method].append(float(np.corrcoef(a, b)[0, 1]) if a.std() > 0 and b.std() > 0 else 1.0)
        for c, label in enumerate(labels):
            doers = [k for k, a in enumerate(rec["actors"]) if label in a["actions"]]
            if doers and len(doers) < len(rec["actors"]):  # pointing game: only where the label picks actors out
                for method in METHODS:
                    t, y, x = results[method][c].peak()
                    point[method].append(any(inside(boxes[k][frames[t]], y, x) for k in doers))
                if spatial_memory:
                    t, y, x = cross_attention_peak(results[METHODS[0]][c].cross_attention, T, S)
                    point["cross-attention"].append(any(inside(boxes[k][frames[t]], y, x) for k in doers))
                    others = [boxes[k] for k in boxes if k not in doers]
                    shares.append(attention_shares(results[METHODS[0]][c].cross_attention, [boxes[k] for k in doers],
                                                   others, frames, S))
                point["random point"].append(np.mean([covered_fraction([boxes[k][f] for k in doers], S) for f in frames]))
                hits = []
                for f in frames:
                    b = boxes[largest][f]
                    cy, cx = (b[1] + b[3]) / 2 - 0.5, (b[0] + b[2]) / 2 - 0.5
                    hits.append(any(inside(boxes[k][f], cy, cx) for k in doers))
                point["largest actor"].append(float(np.mean(hits)))
            # deletion: every true label
            embed = model.embed_labels([label])
            orders = {m: np.argsort(-results[m][c].tokens.ravel(), kind="stable") for m in METHODS}
            grid = results[METHODS[0]][c].tokens.shape
            orders["random order"] = rng.permutation(int(np.prod(grid)))
            batch = torch.cat([mask_tokens(clip, o, grid) for o in orders.values()])  # (orders * STEPS, T, 3, S, S)
            probs = score_clips(model, batch, label_embed=embed).numpy()[:, 0].reshape(len(orders), STEPS)
            for name, curve in zip(orders, probs):
                deletion[name].append(auc(curve))
    # time: splice each clip's label into a clip without it
    for i, cid in enumerate(ids):
        rec = records[cid]
        for label in rec["labels"]:
            other = next((ids[(i + j) % len(ids)] for j in range(1, len(ids)) if label not in records[ids[(i + j) % len(ids)]]["labels"]), None)
            if other is None:
                continue
            length = int(rng.integers(2, T - 1))
            start = int(rng.integers(0, T - length + 1))
            spliced = clips[other].clone()
            spliced[start : start + length] = clips[cid][start : start + length]
            results = explain_clip(model, spliced, [label])
            visible = np.zeros(T, bool)
            visible[start : start + length] = True
            for method in METHODS:
                temporal[method].append(bool(visible[int(np.argmax(results[method][0].temporal))]))
            cross = results[METHODS[0]][0].cross_attention
            cross = cross.reshape(len(cross), -1).sum(axis=1)  # (T',): the memory's weight per temporal position
            per_frame = np.repeat(cross, T // len(cross))
            temporal["cross-attention"].append(bool(visible[int(np.argmax(per_frame))]))
            temporal["chance"].append(length / T)
    return {
        "pointing_cases": len(point["random point"]),
        "pointing": {k: float(np.mean(v)) for k, v in point.items()},
        **({"query_attention_shares": {k: float(np.mean([x[k] for x in shares])) for k in shares[0]}} if shares else {}),
        "deletion_cases": len(deletion["random order"]),
        "deletion_auc": {k: float(np.mean(v)) for k, v in deletion.items()},
        "query_attention_max": float(np.mean(peakedness)),
        "query_attention_uniform": uniform,
        "two_labels_map_correlation": {k: float(np.mean(v)) for k, v in same_map.items() if v},
        "time_cases": len(temporal["chance"]),
        "time_peak_inside": {k: float(np.mean(v)) for k, v in temporal.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default="runs/demo/run", help="the demo's run folder (or any checkpoint)")
    parser.add_argument("--data", default="data/synth", help="the synthetic benchmark (with meta/trajectories.jsonl)")
    parser.add_argument("--splits", nargs="+", default=list(SPLITS))
    parser.add_argument("--limit", type=int, default=None, help="clips per split (default: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/explain_quality")
    args = parser.parse_args()

    import torch

    from msqnet import load_model
    from msqnet.utils import atomic_write_text, json_text

    torch.manual_seed(args.seed)
    data = Path(args.data)
    records = {}
    with open(data / "meta" / "trajectories.jsonl") as f:
        for line in f:
            r = json.loads(line)
            records[r["id"]] = r
    model = load_model(args.checkpoint).float().eval()
    started = time.time()
    report = {"checkpoint": args.checkpoint, "seed": args.seed, "limit": args.limit, "splits": {}}
    for split in args.splits:
        report["splits"][split] = evaluate_split(model, data, split, records, args.limit, args.seed)
    report["seconds"] = round(time.time() - started, 1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "explain_quality.json", json_text(report, indent=2) + "\n")
    for split, r in report["splits"].items():
        print(f"\n{split}")
        print(f"  pointing game ({r['pointing_cases']} cases): " + ", ".join(f"{k} {v:.3f}" for k, v in r["pointing"].items()))
        if "query_attention_shares" in r:
            print("  class queries' cross-attention, in the pointing cases: "
                  + ", ".join(f"{k} {v:.3f}" for k, v in r["query_attention_shares"].items()))
        print(f"  deletion AUC ({r['deletion_cases']} cases, lower is better): "
              + ", ".join(f"{k} {v:.3f}" for k, v in r["deletion_auc"].items()))
        print(f"  class queries: largest cross-attention weight over the memory {r['query_attention_max']:.3f} "
              f"(uniform {r['query_attention_uniform']:.3f}); correlation of two labels' maps in one clip: "
              + ", ".join(f"{k} {v:.3f}" for k, v in r["two_labels_map_correlation"].items()))
        print(f"  temporal peak inside the shown part ({r['time_cases']} cases): "
              + ", ".join(f"{k} {v:.3f}" for k, v in r["time_peak_inside"].items()))
    print(f"\n{report['seconds']:.0f} s; wrote {out / 'explain_quality.json'}")


if __name__ == "__main__":
    main()
