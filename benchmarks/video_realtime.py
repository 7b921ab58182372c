"""Real-time video on the CPU: PicoDet-S + PP-TinyPose on a 1280x720 30 fps clip of one, two and
three people (tests/clips.py: real COCO photos panned; the three-person scene also holds a
fourth, smaller person the detector finds), decoded, posed, drawn and encoded to mp4.

- plain loop: the same models and drawing, one frame after another in one thread, the
  detector on every frame (the baseline);
- hrpose infer, as fast as it goes: the threaded pipeline (read | detect + pose | draw +
  encode), the detector on every frame, then every 5th (`--detect-every 5`);
- hrpose infer --realtime --detect-every 5: the clip played at its 30 fps; frames the models
  cannot take in time are dropped;
- the last two again with `--streams 2` (the pose batch split across two OpenVINO streams).

Figures: frames/s over the clip, latency (frame read or due -> drawn frame encoded) p50/p95,
dropped frames, and frames/s per scene. The paths are interleaved; medians of the repeats.

    python benchmarks/video_realtime.py [--repeats 3] [--no-report]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))     # tests.clips
from common import SHARED, median, report
from tests.clips import write_clip

from hrpose.inference.draw import draw_found
from hrpose.inference.estimator import PoseEstimator
from hrpose.inference.infer import InferSettings, infer
from hrpose.inference.video import VideoReader, VideoWriter

TINYPOSE = SHARED / "models/tinypose_256x192/model.xml"
PICODET = SHARED / "models/picodet_s_320_pedestrian/picodet_s_320_lcnet_pedestrian.xml"
SCENE = 100          # frames per scene


def plain_loop(est: PoseEstimator, clip: Path, out: Path) -> dict:
    """Read, detect, pose, draw, encode: one frame at a time, one thread."""
    reader = VideoReader(clip)
    out.mkdir(parents=True)
    writer = VideoWriter(out / "plain.mp4", reader.fps, (1280, 720))
    latencies, done = [], []
    start = time.perf_counter()
    frames = iter(reader)
    while True:
        read_at = time.perf_counter()
        frame = next(frames, None)
        if frame is None:
            break
        people = est.predict_rgb([frame], None, ["frame"])[0]
        writer.write(draw_found(frame, people, est.skeleton, 0.3, 0.1))
        done.append(time.perf_counter())
        latencies.append(done[-1] - read_at)
    writer.close()
    seconds = time.perf_counter() - start
    return {"fps": len(done) / seconds, "p50": np.percentile(latencies, 50) * 1e3,
            "p95": np.percentile(latencies, 95) * 1e3, "dropped": 0,
            "scenes": _scene_fps([start, *done])}


def _scene_fps(times: list[float]) -> list[float]:
    """Frames/s within each scene, from the times frames were done (start first)."""
    t = np.asarray(times)
    return [SCENE / (t[min(i + SCENE, len(t) - 1)] - t[i]) for i in range(0, len(t) - 1, SCENE)]


def hrpose_infer(est: PoseEstimator, clip: Path, out: Path, detect_every: int,
                 realtime: bool) -> dict:
    settings = InferSettings(detect_every=detect_every, realtime=realtime, progress=False)
    summary = infer([clip], est, out, settings)
    video = summary["videos"][0]
    return {"fps": video["fps"], "p50": video["latency_ms"]["p50"],
            "p95": video["latency_ms"]["p95"], "dropped": video["dropped"],
            "detector_runs": video["detector_runs"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-report", action="store_true")
    args = parser.parse_args()
    if not SHARED.is_dir():
        sys.exit(f"{SHARED}: the shared data (models, COCO photos) is needed")
    work = Path(tempfile.mkdtemp(prefix="hrpose-video-"))
    clip = write_clip(work / "people_720p.mp4", SHARED)
    est = PoseEstimator(TINYPOSE, detector=PICODET)
    est2 = PoseEstimator(TINYPOSE, detector=PICODET, streams=2)
    for e in (est, est2):
        e.warm_up()
    paths = {
        "plain loop, detector every frame (baseline)": lambda o: plain_loop(est, clip, o),
        "hrpose infer, detector every frame": lambda o: hrpose_infer(est, clip, o, 1, False),
        "hrpose infer --detect-every 5": lambda o: hrpose_infer(est, clip, o, 5, False),
        "hrpose infer --detect-every 5 --streams 2": lambda o: hrpose_infer(est2, clip, o, 5,
                                                                            False),
        "hrpose infer --detect-every 5 --realtime": lambda o: hrpose_infer(est, clip, o, 5,
                                                                           True),
        "hrpose infer --detect-every 5 --realtime --streams 2":
            lambda o: hrpose_infer(est2, clip, o, 5, True),
    }
    runs: dict[str, list[dict]] = {name: [] for name in paths}
    for repeat in range(args.repeats):
        for name, run in paths.items():
            runs[name].append(run(work / f"{repeat}-{len(runs[name])}-{list(paths).index(name)}"))
            print(repeat, name, runs[name][-1], flush=True)
    base = median([r["fps"] for r in runs[next(iter(paths))]])
    lines = [f"`python benchmarks/video_realtime.py --repeats {args.repeats}`: a 1280x720 30 fps "
             "clip of 300 frames (tests/clips.py: three real COCO photos, one, two and three "
             "people, each panned for 100 frames; the detector also finds a fourth, small "
             "person in the last), PicoDet-S 320 + PP-TinyPose 256x192 (OpenVINO, bf16 "
             "where native), decoded, posed, drawn and encoded to mp4v; latency: frame "
             "read (realtime: due) -> its drawing encoded. Median of "
             f"{args.repeats} interleaved repeats.", "",
             "| path | frames/s | vs plain loop | latency p50 ms | p95 ms | dropped "
             "| detector runs |", "|---|---:|---:|---:|---:|---:|---:|"]
    for name, results in runs.items():
        fps = median([r["fps"] for r in results])
        lines.append(f"| {name} | {fps:.1f} | {fps / base:.2f}x | "
                     f"{median([r['p50'] for r in results]):.0f} | "
                     f"{median([r['p95'] for r in results]):.0f} | "
                     f"{median([r['dropped'] for r in results]):.0f} | "
                     f"{median([r.get('detector_runs', 300) for r in results]):.0f} |")
    scenes = np.median([r["scenes"] for r in runs[next(iter(paths))]], axis=0)
    lines.append("\nPlain loop frames/s by scene (1 / 2 / 3+1 people): "
                 + " / ".join(f"{s:.1f}" for s in scenes))
    report("Real-time video: PicoDet + PP-TinyPose on 1280x720", lines,
           append=not args.no_report)


if __name__ == "__main__":
    main()
