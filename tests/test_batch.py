"""Batch pose extraction (hrpose.batch): PosePredictor, Parquet parts, --shard, resuming, and
the Ray engine on a local cluster. Real images and models from the shared data folder."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from hrpose.batch import PosePredictor, read_rows
from hrpose.batch.inputs import (
    Item,
    expand,
    image_id,
    input_keys,
    list_sources,
    parse_shard,
    plan_parts,
    stable_hash,
)
from hrpose.batch.job import BatchSettings, run_batch
from hrpose.batch.parts import Store, completed
from hrpose.batch.writer import PartWriter
from hrpose.cli import main
from hrpose.errors import HrposeError
from hrpose.inference.estimator import PoseEstimator
from hrpose.inference.options import EstimatorOptions
from hrpose.inference.person import coco_result
from hrpose.inference.video import VideoReader
from hrpose.io import read_image

from .clips import write_clip, write_damaged_avi
from .helpers import shared_data

ROOT = Path(__file__).resolve().parents[1]


def models() -> tuple[str, str]:
    return (str(shared_data("models", "tinypose_256x192", "model.xml")),
            str(shared_data("models", "picodet_s_320_pedestrian")))


def model_args() -> list[str]:
    """fp32 stated: module fixtures, subprocesses and Ray's workers do not see the autouse
    fixture that makes "auto" fp32 in a test."""
    pose, detector = models()
    return ["--model", pose, "--detector", detector, "--precision", "fp32"]


@pytest.fixture(scope="module")
def forty(tmp_path_factory) -> Path:
    """40 real COCO photos (coco-mini-train), linked into a folder of their own."""
    folder = tmp_path_factory.mktemp("forty")
    for photo in sorted((shared_data("coco-mini-train") / "train2017").glob("*.jpg"))[:40]:
        (folder / photo.name).symlink_to(photo)
    return folder


@pytest.fixture(scope="module")
def plain(forty, tmp_path_factory) -> list[dict]:
    """What a plain `hrpose infer` writes for them (results.json)."""
    out = tmp_path_factory.mktemp("plain")
    assert main(["infer", str(forty), *model_args(), "--out", str(out), "--no-draw",
                 "--json"]) == 0
    return json.loads((out / "results.json").read_text())


def as_rows(results: list[dict]) -> list[tuple]:
    """Rows comparable across results.json and Parquet: float32, as Parquet stores them."""
    return sorted((r["image_id"], r.get("frame"), tuple(np.float32(r["bbox"])),
                   np.float32(r["score"]), tuple(np.float32(r["keypoints"]))) for r in results)


def parquet_rows(out: Path | str) -> list[dict]:
    return read_rows(out).to_pylist()


def test_pose_predictor_equals_pose_estimator():
    pose, detector = models()
    photos = sorted((shared_data("coco-mini-train") / "train2017").glob("*.jpg"))[:6]
    images = [read_image(p) for p in photos]
    estimator = PoseEstimator(pose, detector=detector)
    expected = [[{k: v for k, v in coco_result(person, 0).items()
                  if k not in ("image_id", "category_id")} for person in people]
                for people in estimator.predict_batch(images, color="rgb")]
    predictor = PosePredictor(pose, detector=detector)
    batch = {"image": images, "path": [str(p) for p in photos]}
    out = predictor(batch)
    assert out["path"] == batch["path"] and out["image"] is images     # the batch, plus
    assert out["people"] == expected and sum(map(len, expected)) >= 6
    # Spark's binaryFile rows: encoded bytes, decoded in the predictor
    encoded = predictor({"bytes": [p.read_bytes() for p in photos]})
    assert encoded["people"] == expected
    # Ray's read_images gives one (N, H, W, 3) array when the sizes agree
    stacked = predictor({"image": np.stack([images[0], images[0]])})
    assert stacked["people"] == [expected[0], expected[0]]
    with pytest.raises(HrposeError, match="needs an 'image' or a 'bytes' column; it has 'x'"):
        predictor({"x": [1]})


def test_shard_assignment_is_stable_and_parsed():
    # pinned: N jobs of different hrpose versions or machines must agree on every input
    assert stable_hash("sub/frame_0001.jpg") == 18376184965441507736
    assert image_id("000000000785.jpg") == 785
    assert image_id("sub/frame_0001.jpg") == 280398330161155 < 2**48
    assert parse_shard("2/3") == (2, 3)
    for bad, message in (("3/3", "I must be in 0..N-1"), ("1/0", "N must be at least 1"),
                         ("a/b", "expected I/N")):
        with pytest.raises(HrposeError, match=message):
            parse_shard(bad)
    items = [Item(f"{i:03d}.jpg", f"/x/{i:03d}.jpg") for i in range(10)]
    parts = plan_parts(items, {"000.jpg", "004.jpg"}, 3)
    assert [[i.key for i in p.items] for p in parts] == [
        ["001.jpg", "002.jpg", "003.jpg"], ["005.jpg", "006.jpg", "007.jpg"],
        ["008.jpg", "009.jpg"]]
    assert len({p.name for p in parts}) == 3 and parts[0].name == plan_parts(
        items[1:4], set(), 3)[0].name                        # named by their items alone


def test_inputs_from_a_list_file_and_a_url(tmp_path, forty):
    names = sorted(p.name for p in forty.iterdir())[:3]
    listing = tmp_path / "inputs.txt"
    listing.write_text(f"# three photos\n{forty.name}/{names[0]}\n\n"
                       f"{forty / names[1]}  # absolute\n"
                       f"file://{forty / names[2]}\n")
    (tmp_path / forty.name).symlink_to(forty)
    sources = list_sources(str(listing))
    assert sources == [str(tmp_path / forty.name / names[0]), str(forty / names[1]),
                       f"file://{forty / names[2]}"]
    url = list_sources(f"file://{forty}")
    assert len(url) == 40 and url[0] == f"file://{forty / names[0]}"
    assert input_keys(f"file://{forty}", url)[:2] == names[:2]
    assert input_keys(str(forty), [str(forty / names[0]), str(forty / "sub" / "b.jpg")]) == [
        names[0], "sub/b.jpg"]
    listing.write_text(f"{forty / names[0]}\n{forty / names[0]}\n")
    with pytest.raises(HrposeError, match=r"inputs.txt, line 2: .* is listed twice"):
        list_sources(str(listing))
    listing.write_text("notes.doc\n")
    with pytest.raises(HrposeError, match=r"line 1: 'notes\.doc' is not an image or video"):
        list_sources(str(listing))


@pytest.mark.slow
def test_parquet_parts_equal_plain_infer_and_resume(forty, plain, tmp_path, capsys):
    out = tmp_path / "out"
    args = ["infer", str(forty), *model_args(), "--format", "parquet", "--part-size", "16",
            "--out", str(out), "--json"]
    assert main(args) == 0
    first = json.loads(capsys.readouterr().out)
    assert (first["done"], first["skipped"], first["parts"], first["complete"]) == (
        40, 0, 3, True)
    rows = parquet_rows(out)
    assert as_rows(rows) == as_rows(plain)
    row = rows[0]
    assert row["file"] == str(forty / row["key"]) and row["frame"] is None
    assert (row["model"], row["keypoint_set"], row["codec"]) == ("model.xml", "coco", "classic")
    assert len(row["keypoints"]) == 51 and row["image_width"] > 0
    manifest = json.loads((out / "_manifest.json").read_text())
    assert manifest["complete"] and manifest["done"] == 40 and manifest["rows"] == len(plain)
    assert manifest["model"]["joints"][0] == "nose" and len(manifest["parts"]) == 3
    # A part lost (a killed job never wrote it) and a killed job's temporary file: the rerun
    # redoes only that part's images and removes the temporary.
    lost = sorted(out.glob("part-*.parquet"))[1]
    size = len(completed(Store(str(out)))[lost.name].items)
    lost.unlink()
    (out / f".{lost.name}.abc123.tmp").write_bytes(b"half a file")
    assert main(args) == 0
    again = json.loads(capsys.readouterr().out)
    assert (again["done"], again["skipped"], again["parts_written"]) == (size, 40 - size, 1)
    assert lost.exists() and not list(out.glob(".*.tmp"))
    assert as_rows(parquet_rows(out)) == as_rows(plain)
    assert main(args) == 0                                   # nothing left: nothing run
    assert json.loads(capsys.readouterr().out)["done"] == 0
    # a shard's job over what one job wrote: its share is done, in parts that hold others too
    assert main([*args, "--shard", "1/2"]) == 0
    shard = json.loads(capsys.readouterr().out)
    assert (shard["done"], shard["skipped"], shard["complete"]) == (0, shard["items"], True)
    manifest = json.loads((out / "_manifest.shard-1-of-2.json").read_text())
    assert manifest["done"] == shard["items"] < 40 and manifest["complete"]


@pytest.mark.slow
def test_shards_cover_every_input_once(forty, plain, tmp_path, capsys):
    out = tmp_path / "out"
    keys = []
    for index in range(3):
        assert main(["infer", str(forty), *model_args(), "--shard", f"{index}/3",
                     "--part-size", "8", "--out", str(out), "--json"]) == 0
        summary = json.loads(capsys.readouterr().out)
        manifest = json.loads((out / f"_manifest.shard-{index}-of-3.json").read_text())
        assert manifest["complete"] and manifest["shard"] == f"{index}/3"
        shard_keys = [k for p in manifest["parts"] for k in
                      completed(Store(str(out)))[p["file"]].items]
        assert len(shard_keys) == summary["items"] > 0
        keys += shard_keys
    assert len(keys) == len(set(keys)) == 40                 # a union, no overlap
    assert as_rows(parquet_rows(out)) == as_rows(plain)


def test_an_item_in_two_parts_is_kept_once(forty, tmp_path):
    pose, detector = models()
    out = tmp_path / "out"
    writer = PartWriter(pose, EstimatorOptions(detector=detector), str(out), {})
    photos = sorted(forty.iterdir())[:6]
    items = [Item(p.name, str(p)) for p in photos]
    first = plan_parts(items[:4], set(), 4)[0]
    second = plan_parts(items[2:], set(), 4)[0]               # two raced jobs' parts
    for part in (first, second):
        writer.write_part(part)
    before = parquet_rows(out)
    assert len(before) > len({(r["key"], r["person"]) for r in before})   # duplicated rows
    parts = completed(Store(str(out)))
    owners = [k for info in parts.values() for k in info.items]
    assert sorted(owners) == sorted(i.key for i in items)    # each item in one part
    after = parquet_rows(out)
    assert len(after) == len({(r["key"], r["person"]) for r in after})
    assert as_rows(after) == sorted(set(as_rows(before)))


@pytest.mark.slow
def test_video_segments_are_tracked_within_and_equal_plain_infer(tmp_path, capsys):
    (tmp_path / "in").mkdir()
    clip = write_clip(tmp_path / "in" / "clip.mp4", shared_data(), size_wh=(640, 360),
                      frames_per_scene=20)
    assert main(["infer", str(clip), *model_args(), "--out", str(tmp_path / "plain"),
                 "--no-draw", "--json"]) == 0
    capsys.readouterr()
    assert main(["infer", str(clip), *model_args(), "--format", "parquet",
                 "--segment-frames", "25", "--out", str(tmp_path / "pq"), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["video_segments"] == summary["parts"] == 3
    rows = parquet_rows(tmp_path / "pq")
    reference = json.loads((tmp_path / "plain" / "results.json").read_text())
    assert as_rows(rows) == as_rows(reference) and len(rows) > 60
    assert {r["segment"] for r in rows} == {0, 25, 50}
    assert {r["key"] for r in rows} == {"clip.mp4@0+25", "clip.mp4@25+25", "clip.mp4@50+10"}
    with pytest.raises(HrposeError, match=r"holds segment clip\.mp4@0\+25, which this run would "
                       "not make: rerun with the --segment-frames"):
        run_batch(str(clip), str(tmp_path / "pq"), models()[0], EstimatorOptions(), BatchSettings(
            segment_frames=30, progress=False))
    reader = VideoReader(clip)                   # a frame count that overstates: no frames
    assert reader.seek(59) and not reader.seek(75)
    reader.capture.release()
    for segment in (0, 25, 50):                  # tracks start again in each segment
        frames = [r for r in rows if r["segment"] == segment]
        assert min(r["frame"] for r in frames) == segment
        first = [r["track_id"] for r in frames if r["frame"] == segment]
        assert sorted(first) == list(range(len(first)))


def test_batch_options_are_checked_in_one_line(forty, tmp_path, capsys):
    base = ["infer", str(forty), *model_args(), "--out", str(tmp_path / "o")]
    for extra, message in (
            (["--shard", "0/2", "--format", "csv"], "--format csv: a batch job"),
            (["--format", "parquet", "--max-frames", "3"], "--max-frames is not available"),
            (["--concurrency", "2"], "--address, --concurrency and --num-gpus are for --engine"),
            (["--shard", "5/2"], "--shard 5/2: I must be in 0..N-1")):
        assert main([*base, *extra]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, err


def test_a_url_without_a_batch_job_is_one_line(tmp_path, capsys):
    assert main(["infer", "s3://bucket/frames/", *model_args(), "--out",
                 str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "URLs of files are read by batch jobs: add --format" in err


def test_the_ray_engine_without_ray_is_one_line(forty, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)            # as if the extra were absent
    assert main(["infer", str(forty), *model_args(), "--engine", "ray", "--out",
                 str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--engine ray needs Ray: pip install 'hrpose[ray]'" in err


def test_unreadable_inputs_are_reported_and_retried(forty, plain, tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    good = sorted(forty.iterdir())[:3]
    for photo in good:
        (folder / photo.name).symlink_to(photo.resolve())
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    args = ["infer", str(folder), *model_args(), "--format", "parquet", "--out",
            str(tmp_path / "out"), "--json"]
    assert main(args) == 1
    summary = json.loads(capsys.readouterr().out)
    assert (summary["done"], summary["complete"]) == (3, False)
    assert [f["input"] for f in summary["failed"]] == ["broken.jpg"]
    assert "broken.jpg: cannot decode the image" in summary["failed"][0]["error"]
    manifest = json.loads((tmp_path / "out" / "_manifest.json").read_text())
    assert manifest["failed"] == summary["failed"] and manifest["done"] == 3
    assert main(args) == 1                                   # tried again, alone
    again = json.loads(capsys.readouterr().out)
    assert (again["skipped"], again["done"], len(again["failed"])) == (3, 0, 1)
    ids = {int(p.stem) for p in good}
    assert as_rows(parquet_rows(tmp_path / "out")) == as_rows(
        [r for r in plain if r["image_id"] in ids])


def test_url_inputs_and_outputs(forty, plain, tmp_path, capsys):
    """fsspec on both sides: file:// photos in, an in-memory store out (any fsspec URL is
    written the same way: one whole-file put per part)."""
    folder = tmp_path / "in"
    folder.mkdir()
    good = sorted(forty.iterdir())[:4]
    for photo in good:
        (folder / photo.name).symlink_to(photo.resolve())
    assert main(["infer", f"file://{folder}", *model_args(), "--format", "parquet",
                 "--part-size", "2", "--out", "memory://hrpose-test/poses", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["parts"] == 2 and summary["manifest"].endswith("poses/_manifest.json")
    rows = parquet_rows("memory://hrpose-test/poses")
    assert {r["file"] for r in rows} <= {f"file://{p}" for p in folder.iterdir()}
    ids = {int(p.stem) for p in good}
    assert as_rows(rows) == as_rows([r for r in plain if r["image_id"] in ids])


@pytest.fixture(scope="module")
def local_ray():
    import ray  # in the test extra (hrpose[ray]): its tests run, never skip

    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
    yield ray
    ray.shutdown()


@pytest.mark.slow
def test_ray_engine_writes_the_rows_of_plain_infer(local_ray, forty, plain, tmp_path, capsys):
    out = tmp_path / "ray"
    assert main(["infer", str(forty), *model_args(), "--engine", "ray", "--concurrency", "2",
                 "--part-size", "8", "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["engine"], summary["done"], summary["parts"]) == ("ray", 40, 5)
    assert summary["complete"] and summary["rows"] == len(plain)
    assert as_rows(parquet_rows(out)) == as_rows(plain)


def _parts(out: Path) -> int:
    return len(list(out.glob("part-*.parquet")))


@pytest.mark.slow
def test_a_killed_ray_job_resumes_with_each_row_once(forty, plain, tmp_path):
    """SIGKILL of the driver mid-way, then the same command again: the parts written survive,
    the rest are done, and every person is in the output exactly once."""
    out = tmp_path / "ray"
    command = [sys.executable, "-m", "hrpose", "infer", str(forty), *model_args(), "--engine",
               "ray", "--concurrency", "1", "--part-size", "2", "--out", str(out), "--json"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    driver = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              cwd=ROOT, env=env, start_new_session=True)
    deadline = time.monotonic() + 180
    while _parts(out) < 3 and driver.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    driver.send_signal(signal.SIGKILL)
    driver.communicate()
    survived = _parts(out)
    time.sleep(1)
    # Ray's node agents outlive a SIGKILLed driver of the local cluster it started: reap them
    with contextlib.suppress(ProcessLookupError):
        os.killpg(driver.pid, signal.SIGKILL)
    assert 3 <= survived < 20, f"{survived} of 20 parts when the driver was killed"
    rerun = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env,
                           timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    summary = json.loads(rerun.stdout.splitlines()[-1])
    assert summary["complete"] and summary["skipped"] >= 2 * survived
    assert summary["skipped"] + summary["done"] == 40
    rows = parquet_rows(out)
    assert len(rows) == len({(r["key"], r["person"]) for r in rows}) == len(plain)
    assert as_rows(rows) == as_rows(plain)


@pytest.mark.slow
def test_a_job_joins_a_running_cluster_at_its_address(forty, plain, tmp_path):
    """`ray start --head` on a port, then --address HOST:PORT, as on a real cluster's node; an
    address where nothing answers is one line at once (Ray itself retries for minutes)."""
    from hrpose.batch.ray_engine import check_reachable

    with pytest.raises(HrposeError, match=r"--address 127\.0\.0\.1:1: no Ray cluster answers"):
        check_reachable("127.0.0.1:1")
    with pytest.raises(HrposeError, match="expected auto, HOST:PORT or ray://HOST:PORT"):
        check_reachable("somewhere")
    port = _free_port()
    # a cluster's token, given to the job as a real cluster's nodes and drivers share it
    env = {**os.environ, "OMP_NUM_THREADS": "1", "RAY_USAGE_STATS_ENABLED": "0",
           "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": "hrpose-test-" + os.urandom(8).hex()}
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")        # Ray's sockets want short paths
    # --block: the head and its daemons stay in this process group, which is stopped at the
    # end (`ray stop` would stop every Ray on the machine)
    head = subprocess.Popen([str(Path(sys.executable).parent / "ray"), "start", "--head",
                             "--block", f"--port={port}", "--num-cpus=2",
                             "--node-ip-address=127.0.0.1", "--include-dashboard=false",
                             f"--temp-dir={temp}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                check_reachable(f"127.0.0.1:{port}")
                break
            except HrposeError:
                assert head.poll() is None and time.monotonic() < deadline, "no Ray head"
                time.sleep(0.5)
        folder = tmp_path / "in"
        folder.mkdir()
        for photo in sorted(forty.iterdir())[:6]:
            (folder / photo.name).symlink_to(photo.resolve())
        job = subprocess.run(
            [sys.executable, "-m", "hrpose", "infer", str(folder), *model_args(), "--engine",
             "ray", "--address", f"127.0.0.1:{port}", "--part-size", "3", "--out",
             str(tmp_path / "out"), "--json"],
            capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
        assert job.returncode == 0, job.stderr[-2000:]
        summary = json.loads(job.stdout.splitlines()[-1])
        assert (summary["done"], summary["parts"], summary["complete"]) == (6, 2, True)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(head.pid, signal.SIGKILL)       # `ray start --block` stops slowly
        head.wait(timeout=60)
        shutil.rmtree(temp, ignore_errors=True)
    ids = {int(p.stem) for p in folder.iterdir()}
    assert as_rows(parquet_rows(tmp_path / "out")) == as_rows(
        [r for r in plain if r["image_id"] in ids])


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_reruns_keep_every_key_when_inputs_grow_and_refuse_other_models(forty, tmp_path,
                                                                         capsys):
    root, photos = tmp_path / "in", sorted(forty.iterdir())
    (root / "a").mkdir(parents=True)
    for photo in photos[:3]:
        (root / "a" / photo.name).symlink_to(photo.resolve())
    out = tmp_path / "out"
    pattern = str(root / "**" / "*.jpg")
    args = ["infer", pattern, *model_args(), "--format", "parquet", "--out", str(out), "--json"]
    assert main(args) == 0
    capsys.readouterr()
    # A new file in a new folder: the common folder of the inputs moves, their keys do not.
    (root / "b").mkdir()
    (root / "b" / photos[3].name).symlink_to(photos[3].resolve())
    assert main(args) == 0
    again = json.loads(capsys.readouterr().out)
    assert (again["skipped"], again["done"], again["complete"]) == (3, 1, True)
    rows = read_rows(out).to_pylist()
    assert {r["key"] for r in rows} <= {f"a/{p.name}" for p in photos[:3]} | {
        f"b/{photos[3].name}"}
    assert len({(r["key"], r["person"]) for r in rows}) == len(rows)     # nothing twice
    # Another model, or another setting, into the same folder: refused before any work.
    (root / "b" / photos[4].name).symlink_to(photos[4].resolve())
    parts = sorted(p.name for p in out.glob("part-*"))
    other = ["--model", str(shared_data("models", "tinypose_128x96", "model.xml"))]
    for changed, words in ((args[:2] + other + args[4:], "another model model.xml (its card's"),
                           (args + ["--box-threshold", "0.7"], "setting box_threshold")):
        assert main(changed) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"holds parts written with {words}" in err, err
        assert "write to another --out" in err
        (root / "b" / photos[4].name).unlink(missing_ok=True)    # nothing left to do: still
    assert sorted(p.name for p in out.glob("part-*")) == parts


def test_a_video_that_overstates_its_frames_plans_what_it_has(tmp_path):
    clip = write_damaged_avi(tmp_path / "claims.avi", 20, stated=2**31 - 2)
    items = expand(str(clip), [str(clip)], 8)
    assert [i.key for i in items] == ["claims.avi@0+8", "claims.avi@16+4", "claims.avi@8+8"]
