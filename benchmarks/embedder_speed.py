"""Time to build each frozen embedder and embed 140 Animal Kingdom class names / a clip, on this CPU."""
import csv, os, time, warnings
from pathlib import Path
import torch
from transformers.utils import logging
from msqnet.models.config import LabelEmbedderConfig, VisualEmbedderConfig
from msqnet.models.efficientnet_lite import EFFICIENTNET_LITE_MEAN, EFFICIENTNET_LITE_STD
from msqnet.models.text import build_label_embedder
from msqnet.models.visual import build_visual_embedder

SHARED = Path(os.environ.get("MSQNET_SHARED", Path(__file__).resolve().parents[2] / "shared"))
warnings.filterwarnings("ignore"); logging.set_verbosity_error(); logging.disable_progress_bar()
names = [r["Action"] for r in csv.DictReader(open(SHARED / "annotations/animal_kingdom/AR_metadata_Action.csv"))]
assert len(names) == 140
print(f"torch threads: {torch.get_num_threads()}")
print(f"{'embedder':48s} {'build s':>8s} {'work':>22s} {'s':>7s}")
label_cfgs = {
    "minilm (packaged all-MiniLM-L6-v2)": LabelEmbedderConfig(kind="minilm", normalize=True),
    "clip text B/16 size (random init, 63M)": LabelEmbedderConfig(kind="clip", tokenizer=str(SHARED / "fixtures/clip_tokenizer")),
}
for name, cfg in label_cfgs.items():
    t = time.perf_counter(); emb = build_label_embedder(cfg); build = time.perf_counter() - t
    t = time.perf_counter(); out = emb(names); first = time.perf_counter() - t
    t = time.perf_counter(); emb(names); cached = time.perf_counter() - t
    print(f"{name:48s} {build:8.2f} {'140 names ' + str(tuple(out.shape)):>22s} {first:7.2f}   (cached: {cached * 1e3:.2f} ms)")
vis_cfgs = {
    "efficientnet_lite0 @112": VisualEmbedderConfig(kind="efficientnet_lite0", image_size=112, mean=EFFICIENTNET_LITE_MEAN, std=EFFICIENTNET_LITE_STD),
    "efficientnet_lite0 @224": VisualEmbedderConfig(kind="efficientnet_lite0", image_size=224, mean=EFFICIENTNET_LITE_MEAN, std=EFFICIENTNET_LITE_STD),
    "clip vision B/16 size (random init, 86M)": VisualEmbedderConfig(kind="clip", config={"patch_size": 16}, image_size=224),
}
for name, cfg in vis_cfgs.items():
    t = time.perf_counter(); emb = build_visual_embedder(cfg); build = time.perf_counter() - t
    for b, tt in [(1, 8), (1, 16)]:
        clip = torch.randint(0, 256, (b, tt, 3, 112, 112), dtype=torch.uint8)
        emb(clip)  # warm-up
        t = time.perf_counter(); emb(clip); dt = time.perf_counter() - t
        print(f"{name:48s} {build:8.2f} {f'clip {b}x{tt}x112px':>22s} {dt:7.3f}")
