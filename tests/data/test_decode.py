"""Decoding real videos and frame folders: frame counts, exact frames, resizing, seeking, bad input."""
from __future__ import annotations

import shutil
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image

from msqnet.data.decode import (
    DecodeError,
    FrameIndexError,
    SEEK_MIN_SKIP,
    decode_plan,
    VideoInfo,
    plan_decode,
    probe,
    read_frames,
    segment_frame_range,
)

# name: (frames, width, height, fps) as counted by a full decode of each file
VIDEOS = {
    "bigbuckbunny.mp4": (132, 1280, 720, 25.0),
    "bikes.mp4": (250, 640, 272, 25.0),
    "carphone_pristine.mp4": (120, 176, 144, 30000 / 1001),
    "tree.avi": (68, 320, 240, None),  # variable frame rate; header claims 444 frames at 15 fps
    "vtest.avi": (795, 768, 576, 10.0),
}
# The small ones keep full-decode comparisons fast; together they cover h264, cinepak and msmpeg4v3.
SMALL = ["carphone_pristine.mp4", "tree.avi", "bikes.mp4", "vtest.avi"]


def sequential_frames(path: Path, indices: list[int]) -> torch.Tensor:
    """Ground truth: decode the whole video in order with plain PyAV, keep frames at ``indices``."""
    wanted = set(indices)
    kept = {}
    with av.open(str(path)) as c:
        for i, frame in enumerate(c.decode(video=0)):
            if i in wanted:
                kept[i] = torch.from_numpy(frame.to_ndarray(format="rgb24")).permute(2, 0, 1)
    return torch.stack([kept[i] for i in indices])  # (N, 3, H, W)


@pytest.mark.parametrize("name", sorted(VIDEOS))
def test_probe_reports_true_frame_count_size_and_rate(shared_videos, name):
    frames, width, height, fps = VIDEOS[name]
    info = probe(shared_videos / name)
    assert (info.num_frames, info.width, info.height) == (frames, width, height)
    if fps is not None:
        assert info.fps == pytest.approx(fps)
        assert info.duration == pytest.approx(frames / fps)
        assert info.timestamps is None


def test_probe_counts_variable_rate_avi_by_its_frames_not_its_header(shared_videos):
    path = shared_videos / "tree.avi"
    with av.open(str(path)) as c:
        assert c.streams.video[0].frames == 444  # the header's claim, counting dropped-frame slots
    info = probe(path)
    assert info.num_frames == 68
    assert info.duration == pytest.approx(29.6, abs=0.01)
    assert info.fps == pytest.approx(68 / info.duration)
    ts = np.asarray(info.timestamps)
    assert len(ts) == 68 and ts[0] == 0.0 and np.all(np.diff(ts) > 0)
    assert len(set(np.round(np.diff(ts), 3))) > 1  # really variable


@pytest.mark.parametrize("name", SMALL)
def test_read_frames_equals_the_same_frames_of_a_full_sequential_decode(shared_videos, name):
    n = VIDEOS[name][0]
    rng = np.random.default_rng(0)
    # Sparse, unordered, with repeats, and both ends.
    idx = rng.integers(0, n, size=12).tolist() + [n - 1, 0, 5, 5]
    out = read_frames(shared_videos / name, idx)
    assert out.dtype == torch.uint8 and out.shape == (len(idx), 3, VIDEOS[name][2], VIDEOS[name][1])
    assert torch.equal(out, sequential_frames(shared_videos / name, idx))


def test_read_frames_of_every_frame_in_order_equals_full_decode(shared_videos):
    idx = list(range(68))
    assert torch.equal(read_frames(shared_videos / "tree.avi", idx), sequential_frames(shared_videos / "tree.avi", idx))


def test_read_frames_after_seeking_to_later_keyframes_is_exact(shared_videos):
    # vtest.avi has keyframes at 0, 250, 500, 750: these frames each need their own seek.
    idx = [260, 520, 790, 255]
    path = shared_videos / "vtest.avi"
    assert torch.equal(read_frames(path, idx), sequential_frames(path, idx))


@pytest.mark.parametrize("name,size", [("bikes.mp4", 64), ("carphone_pristine.mp4", 100), ("vtest.avi", 37)])
def test_read_frames_resizes_short_side_and_keeps_aspect(shared_videos, name, size):
    _, width, height, _ = VIDEOS[name]
    out = read_frames(shared_videos / name, [0, 3], size=size)
    assert out.shape[-2] == size
    assert out.shape[-1] == round(width * size / height)


def test_resized_frames_look_like_downscaled_full_frames(shared_videos):
    full = sequential_frames(shared_videos / "bikes.mp4", [40]).float()
    small = read_frames(shared_videos / "bikes.mp4", [40], size=68).float()
    ref = torch.nn.functional.interpolate(full, size=small.shape[-2:], mode="bilinear", antialias=True)
    assert (small - ref).abs().mean() < 6  # same picture, different resampling kernels


def test_plan_decodes_dense_clip_in_one_sequential_run():
    keyframes = [0, 250, 500, 750]
    runs = plan_decode(keyframes, list(range(300, 332, 2)))
    assert [(r.start, r.stop) for r in runs] == [(250, 330)]


def test_plan_seeks_to_nearest_keyframe_for_sparse_samples():
    keyframes = [0, 250, 500, 750]
    runs = plan_decode(keyframes, [10, 260, 510, 760])
    assert [(r.start, r.stop) for r in runs] == [(0, 10), (250, 260), (500, 510), (750, 760)]
    assert sum(r.num_decoded for r in runs) == 44  # instead of 761 frames decoded sequentially


def test_plan_keeps_decoding_when_a_seek_would_skip_too_little():
    keyframes = [0, 4, 250]
    runs = plan_decode(keyframes, [1, 5])  # keyframe 4 is only 2 frames past frame 1
    assert [(r.start, r.stop) for r in runs] == [(0, 5)]
    assert SEEK_MIN_SKIP > 2


def test_frame_folder_reads_sorted_images_in_natural_order(tmp_path):
    folder = tmp_path / "clip"
    folder.mkdir()
    for i in range(12):  # frame_2 must sort before frame_10; the pixel value encodes the index
        Image.new("RGB", (40, 30), (i * 20, 255 - i * 20, 7)).save(folder / f"frame_{i}.png")
    (folder / "notes.txt").write_text("not a frame")
    info = probe(folder, fps=24)
    assert (info.num_frames, info.width, info.height, info.fps) == (12, 40, 30, 24.0)
    out = read_frames(folder, [10, 2, 2])
    assert out.shape == (3, 3, 30, 40)
    assert out[:, 0, 0, 0].tolist() == [200, 40, 40]


def test_frame_folder_of_real_jpegs_resizes_short_side(shared_videos, tmp_path):
    folder = tmp_path / "jpegs"
    folder.mkdir()
    frames = sequential_frames(shared_videos / "carphone_pristine.mp4", list(range(5)))
    for i, frame in enumerate(frames):
        Image.fromarray(frame.permute(1, 2, 0).numpy()).save(folder / f"{i:06d}.jpg", quality=95)
    out = read_frames(folder, [0, 4], size=72)
    assert out.shape == (2, 3, 72, 88)
    ref = frames[[0, 4]].float()
    ref = torch.nn.functional.interpolate(ref, size=(72, 88), mode="bilinear", antialias=True)
    assert (out.float() - ref).abs().mean() < 8


def test_segment_frame_range_maps_seconds_to_frames():
    info = VideoInfo(num_frames=250, fps=25.0, duration=10.0, width=64, height=48)
    assert segment_frame_range(info, 1.0, 2.0) == (25, 50)
    assert segment_frame_range(info, None, None) == (0, 250)
    assert segment_frame_range(info, 9.5, 12.0) == (238, 250)  # end past the video is clamped
    assert segment_frame_range(info, 3.01, 3.02) == (76, 77)  # shorter than a frame: still one frame
    with pytest.raises(ValueError, match="starts after the last frame"):
        segment_frame_range(info, 10.5, 11.0)
    with pytest.raises(ValueError, match="before its start"):
        segment_frame_range(info, 5.0, 4.0)


def test_segment_frame_range_uses_real_timestamps_of_variable_rate_video(shared_videos):
    info = probe(shared_videos / "tree.avi")
    first, last = segment_frame_range(info, 10.0, 20.0)
    ts = info.timestamps
    assert ts[first] >= 10.0 > ts[first - 1]
    assert ts[last - 1] < 20.0 <= ts[last]
    # The average rate would put 10 s near frame 23; the real timestamps say otherwise.
    assert first != round(10.0 * info.fps)


# --- bad input ----------------------------------------------------------------------------------


def test_missing_file_raises_file_not_found_naming_it(tmp_path):
    path = tmp_path / "nowhere.mp4"
    with pytest.raises(FileNotFoundError, match="nowhere.mp4"):
        probe(path)
    with pytest.raises(FileNotFoundError, match="nowhere.mp4"):
        read_frames(path, [0])


def test_random_bytes_fail_fast_with_decode_error(tmp_path):
    path = tmp_path / "noise.mp4"
    path.write_bytes(np.random.default_rng(0).bytes(300_000))
    with pytest.raises(DecodeError, match="noise.mp4"):
        probe(path)


def test_random_bytes_sniffed_as_raw_stream_are_rejected_by_extension(tmp_path):
    # These bytes happen to parse as a raw H.263 elementary stream; a .mp4 must be an MP4 container.
    path = tmp_path / "noise.mp4"
    path.write_bytes(np.random.default_rng(6).bytes(200_000))
    with pytest.raises(DecodeError, match=r"noise\.mp4: content is not a \.mp4 container"):
        probe(path)


@pytest.mark.parametrize("name", ["bikes.mp4", "vtest.avi", "tree.avi"])
def test_truncated_video_raises_decode_error_naming_the_file(shared_videos, tmp_path, name):
    data = (shared_videos / name).read_bytes()
    path = tmp_path / f"cut_{name}"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DecodeError, match=f"cut_{name}"):
        probe(path)


def test_video_with_zero_decodable_frames_raises_on_read(shared_videos, tmp_path):
    # Keep bikes.mp4's index (moov) but zero the compressed picture data (mdat payload).
    data = bytearray((shared_videos / "bikes.mp4").read_bytes())
    at = data.find(b"mdat")
    size = int.from_bytes(data[at - 4 : at], "big")
    data[at + 4 : at - 4 + size] = bytes(size - 8)
    path = tmp_path / "blank.mp4"
    path.write_bytes(bytes(data))
    with pytest.raises(DecodeError, match="blank.mp4"):
        read_frames(path, [0, 10])


def test_container_without_frames_raises_decode_error(shared_videos, tmp_path):
    # vtest.avi's headers survive, its frame chunks and index are zeroed: no packets at all.
    data = bytearray((shared_videos / "vtest.avi").read_bytes())
    movi = data.find(b"movi")
    data[movi + 4 :] = bytes(len(data) - movi - 4)
    path = tmp_path / "hollow.avi"
    path.write_bytes(bytes(data))
    with pytest.raises(DecodeError, match="hollow.avi: video stream holds zero frames"):
        probe(path)


def test_frame_index_beyond_the_end_raises_naming_file_and_count(shared_videos):
    with pytest.raises(FrameIndexError, match=r"tree\.avi: frame index 68 out of range; the video has 68 frames"):
        read_frames(shared_videos / "tree.avi", [0, 68])
    with pytest.raises(IndexError):
        read_frames(shared_videos / "tree.avi", [-1])


def test_empty_frame_folder_and_broken_image_raise_decode_error(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DecodeError, match="empty: frame folder holds no image files"):
        probe(empty)
    broken = tmp_path / "broken"
    broken.mkdir()
    Image.new("RGB", (8, 8)).save(broken / "000001.jpg")
    (broken / "000002.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(DecodeError, match="000002.jpg: not a readable image"):
        read_frames(broken, [0, 1])


def test_non_video_file_with_video_name_is_a_decode_error(tmp_path, shared_dir):
    path = tmp_path / "readme.avi"
    shutil.copy(shared_dir / "README.md", path)
    with pytest.raises(DecodeError, match="readme.avi"):
        probe(path)


def test_decode_plan_of_a_real_video_starts_runs_at_its_keyframes(shared_videos):
    runs = decode_plan(shared_videos / "vtest.avi", [790, 5, 260])  # keyframes 0, 250, 500, 750
    assert [(r.start, r.stop) for r in runs] == [(0, 5), (250, 260), (750, 790)]


def test_matroska_without_a_frame_count_is_counted_and_read_exactly(shared_videos, tmp_path):
    # Remux bikes.mp4's h264 packets into .mkv, whose header carries no frame count.
    out = tmp_path / "bikes.mkv"
    with av.open(str(shared_videos / "bikes.mp4")) as src, av.open(str(out), "w") as dst:
        stream = dst.add_stream_from_template(src.streams.video[0])
        for packet in src.demux(src.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                dst.mux(packet)
    with av.open(str(out)) as c:
        assert c.streams.video[0].frames == 0
    info = probe(out)
    assert (info.num_frames, info.fps) == (250, 25.0)
    idx = [249, 3, 140]
    assert torch.equal(read_frames(out, idx), sequential_frames(shared_videos / "bikes.mp4", idx))


def write_rotated_video(path: Path, degrees: int, width: int = 48, height: int = 32, frames: int = 6) -> None:
    """A real H.264 mp4 as phones write them: landscape pixels and a display matrix turning them by ``degrees``
    (counter-clockwise). Every stored frame is black with a white 8x8 square in its top-left corner."""
    if not hasattr(av.video.stream.VideoStream, "set_display_rotation"):
        pytest.skip("this PyAV cannot write a display matrix")
    pixels = np.zeros((height, width, 3), dtype=np.uint8)
    pixels[:8, :8] = 255
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.set_display_rotation(degrees)
        for _ in range(frames):
            for packet in stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


@pytest.mark.parametrize("degrees, shown_size, corner", [
    (0, (48, 32), "top-left"),
    (90, (32, 48), "bottom-left"),  # a quarter turn counter-clockwise: the top-left corner goes down
    (180, (48, 32), "bottom-right"),
    (270, (32, 48), "top-right"),
])
def test_phone_video_rotation_is_applied_so_frames_come_out_upright(tmp_path, degrees, shown_size, corner):
    path = tmp_path / f"phone_{degrees}.mp4"
    write_rotated_video(path, degrees)
    info = probe(path)
    assert (info.width, info.height, info.rotation) == (*shown_size, degrees)
    frames = read_frames(path, [0, 5])
    assert frames.shape == (2, 3, shown_size[1], shown_size[0])
    luma = frames[0].float().mean(dim=0)  # (H, W)
    corners = {"top-left": luma[:8, :8], "top-right": luma[:8, -8:], "bottom-left": luma[-8:, :8],
               "bottom-right": luma[-8:, -8:]}
    assert {name for name, patch in corners.items() if patch.mean() > 128} == {corner}


def test_rotated_video_resizes_its_upright_short_side(tmp_path):
    path = tmp_path / "phone.mp4"
    write_rotated_video(path, 90)
    assert read_frames(path, [0], size=16).shape == (1, 3, 24, 16)  # portrait 32x48 -> 16x24


@pytest.mark.parametrize("size", [None, 16])
def test_frame_folder_of_mixed_image_sizes_is_refused_not_stretched(tmp_path, size):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, (w, h) in enumerate([(40, 30), (40, 30), (30, 40)]):
        Image.new("RGB", (w, h), (i * 60, 0, 0)).save(folder / f"{i:03d}.png")
    with pytest.raises(DecodeError, match=r"002\.png: frame size 30x40 differs from the folder's first frame "
                                          r"000\.png \(40x30\)"):
        read_frames(folder, [0, 2], size=size)
