"""How fast the frozen CNN of the ``frame_transformer`` encoder runs: plain vs BatchNorm-folded vs
folded + channels-last, in fp32 and bf16 autocast, on a batch of frames.

    python benchmarks/frozen_backbone_speed.py [--size 64] [--stage 5] [--frames 256] [--repeats 3]

Prints milliseconds per frame and the speed-up of each variant over the plain fp32 network, plus the
largest difference of its features from the plain fp32 ones. Run it alone on the machine.
"""
from __future__ import annotations

import argparse
import copy
import time

import torch

from msqnet.models.efficientnet_lite import efficientnet_lite0, fuse_batchnorm


def _time_per_frame(net, frames: torch.Tensor, stage: int, repeats: int, bf16: bool) -> tuple[float, torch.Tensor]:
    run = lambda: net.forward_stages(frames, stage)  # noqa: E731
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        out = run()  # warm-up (oneDNN picks its kernels on the first call)
        start = time.perf_counter()
        for _ in range(repeats):
            run()
    return (time.perf_counter() - start) / repeats / frames.shape[0], out.float()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=64, help="frame size in pixels (the demo: 64)")
    parser.add_argument("--stage", type=int, default=5, help="EfficientNet-Lite0 stage whose features are used")
    parser.add_argument("--frames", type=int, default=256, help="frames per batch")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.manual_seed(0)
    plain = efficientnet_lite0(pretrained=True).eval()
    folded = fuse_batchnorm(copy.deepcopy(plain))
    folded_cl = copy.deepcopy(folded).to(memory_format=torch.channels_last)
    frames = (torch.rand(args.frames, 3, args.size, args.size) - 0.5) / 0.5
    frames_cl = frames.contiguous(memory_format=torch.channels_last)
    base, ref = _time_per_frame(plain, frames, args.stage, args.repeats, bf16=False)
    print(f"EfficientNet-Lite0 stages 1-{args.stage}, {args.frames} frames of {args.size} px, "
          f"{torch.get_num_threads()} threads")
    print(f"{'variant':28s} {'ms/frame':>9s} {'speed-up':>9s} {'max |diff|':>11s}")
    for name, net, x, bf16 in [("plain fp32", plain, frames, False), ("folded BN fp32", folded, frames, False),
                               ("folded BN + channels-last", folded_cl, frames_cl, False),
                               ("plain bf16", plain, frames, True),
                               ("folded BN + channels-last bf16", folded_cl, frames_cl, True)]:
        seconds, out = _time_per_frame(net, x, args.stage, args.repeats, bf16)
        print(f"{name:28s} {seconds * 1e3:9.2f} {base / seconds:8.2f}x {(out - ref).abs().max().item():11.2e}")


if __name__ == "__main__":
    main()
