"""hrpose data download: fetched from a local HTTP server on 127.0.0.1 (interrupted and
resumed, checksums, a truncated archive, offline with the archive placed by hand, a manifest
from another machine), and the sets without a stable URL explained, then checked."""

import contextlib
import hashlib
import io
import json
import shutil
import tarfile
import zipfile
from dataclasses import replace

import pytest

from hrpose.cli import main
from hrpose.data import download as dl
from hrpose.data.download import Archive, DataSource, download_dataset
from hrpose.errors import HrposeError
from hrpose.hub import DownloadError

from .helpers import shared_data


def no_check(root, split):  # a stand-in for a set's check
    return ""


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def tar_gz_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.fixture
def coco_like(server):
    """coco-tiny served as COCO serves val2017: an annotations zip and an image archive (here
    a tar.gz, so that both unpackers run), with published SHA-1s."""
    root = shared_data("coco-tiny")
    ann = (root / "annotations" / "person_keypoints_val2017.json").read_bytes()
    annotations = zip_bytes({"annotations/person_keypoints_val2017.json": ann})
    images = tar_gz_bytes({f"val2017/{p.name}": p.read_bytes()
                           for p in sorted((root / "val2017").iterdir())})
    server.files["/annotations/annotations_trainval2017.zip"] = annotations
    server.files["/zips/val2017.tar.gz"] = images
    sha1 = {name: hashlib.sha1(data).hexdigest() for name, data in
            (("annotations", annotations), ("images", images))}
    source = replace(dl.DATASETS["coco"], splits={"val": (
        Archive(server.url("/annotations/annotations_trainval2017.zip"),
                f"sha1:{sha1['annotations']}"),
        Archive(server.url("/zips/val2017.tar.gz"), f"sha1:{sha1['images']}"))})
    return source, {"annotations_trainval2017.zip": annotations, "val2017.tar.gz": images}


def test_interrupted_download_resumes_then_unpacks_checks_and_writes_a_manifest(
        tmp_path, server, coco_like):
    source, archives = coco_like
    server.cut_once.add("/zips/val2017.tar.gz")
    with pytest.raises(DownloadError, match="run again to resume") as e:
        download_dataset(source, tmp_path, progress=False)
    assert "\n" not in str(e.value)
    part = tmp_path / "archives" / "val2017.tar.gz.part"
    assert 0 < part.stat().st_size < len(archives["val2017.tar.gz"])
    summary = download_dataset(source, tmp_path, progress=False)
    assert server.requests[-1] == ("/zips/val2017.tar.gz",
                                   f"bytes={len(archives['val2017.tar.gz']) // 2}-")
    assert summary["fetched"] == ["val2017.tar.gz"]    # the annotations were done already
    assert "4 images, 14 people (12 with keypoints)" in summary["check"]
    assert len(list((tmp_path / "val2017").iterdir())) == 4
    manifest = (tmp_path / "SHA256SUMS").read_text().splitlines()
    assert manifest == [f"{hashlib.sha256(data).hexdigest()}  archives/{name}"
                        for name, data in sorted(archives.items())]
    assert list((tmp_path / "archives").iterdir()) == []        # unpacked and removed
    # A second run only checks.
    before = len(server.requests)
    again = download_dataset(source, tmp_path, progress=False)
    assert again["fetched"] == [] and len(server.requests) == before
    # The result is a data root evaluation reads.
    from hrpose.data.coco import find_dataset

    assert find_dataset(tmp_path)[1] == tmp_path / "val2017"


def test_a_wrong_checksum_deletes_the_download_and_says_so(tmp_path, server, coco_like):
    source, _ = coco_like
    wrong = replace(source, splits={"val": (replace(source.splits["val"][0],
                                                    checksum="sha1:" + "0" * 40),)})
    with pytest.raises(DownloadError, match=r"SHA1 of the download is [0-9a-f]{40}, the "
                       r"published one 0{40}; the corrupt file was deleted"):
        download_dataset(wrong, tmp_path, progress=False)
    assert list((tmp_path / "archives").iterdir()) == []


def test_a_truncated_archive_is_refused_and_deleted(tmp_path, server):
    whole = tar_gz_bytes({"images/a.jpg": bytes(200_000)})
    server.files["/images.tar.gz"] = whole[: len(whole) // 2]   # the server's file is cut
    source = DataSource("cut", "cut", "none", {"all": (Archive(server.url("/images.tar.gz")),)},
                        {"all": ("images",)}, no_check, default_split="all")
    with pytest.raises(HrposeError, match=r"damaged or truncated .*deleted, run again"):
        download_dataset(source, tmp_path, progress=False)
    assert not (tmp_path / "archives" / "images.tar.gz").exists()


def test_offline_names_the_url_folder_and_file_and_a_placed_archive_is_used(
        tmp_path, server, coco_like):
    source, archives = coco_like
    url = source.splits["val"][1].url
    server.shutdown()
    server.server_close()
    for name in ("annotations_trainval2017.zip",):          # one archive fetched earlier
        (tmp_path / "archives").mkdir(exist_ok=True)
        (tmp_path / "archives" / name).write_bytes(archives[name])
    with pytest.raises(DownloadError) as e:
        download_dataset(source, tmp_path, progress=False, timeout=2)
    message = str(e.value)
    assert "\n" not in message
    assert url in message and str(tmp_path / "archives") in message
    assert "val2017.tar.gz" in message
    (tmp_path / "archives" / "val2017.tar.gz").write_bytes(archives["val2017.tar.gz"])
    summary = download_dataset(source, tmp_path, progress=False)
    assert "4 images" in summary["check"]


def test_a_manifest_from_another_machine_is_enforced(tmp_path, server, coco_like):
    source, _ = coco_like
    (tmp_path / "SHA256SUMS").write_text(f"{'1' * 64}  archives/val2017.tar.gz\n")
    with pytest.raises(DownloadError, match=r"is not the 1{64} that .*SHA256SUMS lists"):
        download_dataset(source, tmp_path, progress=False)


def test_an_archive_member_outside_the_root_is_refused(tmp_path, server):
    server.files["/evil.zip"] = zip_bytes({"../outside.txt": b"x"})
    source = DataSource("evil", "evil", "none", {"all": (Archive(server.url("/evil.zip")),)},
                        {"all": ("x",)}, no_check, default_split="all")
    with pytest.raises(HrposeError, match="would be written outside"):
        download_dataset(source, tmp_path / "root", progress=False)
    assert not (tmp_path / "outside.txt").exists()


def test_a_set_without_a_stable_url_says_where_to_put_each_file_then_checks(tmp_path):
    with pytest.raises(HrposeError) as e:
        download_dataset(dl.DATASETS["ochuman"], tmp_path, "val", progress=False)
    message = str(e.value)
    assert "github.com/liruilong940607/OCHumanApi" in message
    assert str(tmp_path / "annotations" / "ochuman_coco_format_val_range_0.00_1.00.json") in (
        message)
    tiny = shared_data("ochuman-tiny")
    (tmp_path / "annotations").mkdir()
    shutil.copy(tiny / "test_ochuman.json",
                tmp_path / "annotations" / "ochuman_coco_format_val_range_0.00_1.00.json")
    (tmp_path / "images").mkdir()
    for image in sorted(tiny.glob("*.jpg"))[:2]:
        shutil.copy(image, tmp_path / "images")
    with pytest.raises(HrposeError, match=r"1 of the 3 images .* are missing"):
        download_dataset(dl.DATASETS["ochuman"], tmp_path, "val", progress=False)
    for image in tiny.glob("*.jpg"):
        shutil.copy(image, tmp_path / "images")
    summary = download_dataset(dl.DATASETS["ochuman"], tmp_path, "val", progress=False)
    assert summary["check"].endswith(f"all images in {tmp_path / 'images'}")


def test_cli_download_prints_a_summary(tmp_path, server, coco_like, monkeypatch):
    source, _ = coco_like
    monkeypatch.setitem(dl.DATASETS, "coco", source)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["data", "download", "coco", "--out", str(tmp_path), "--json"]) == 0
    summary = json.loads(out.getvalue())
    assert summary["dataset"] == "coco" and summary["split"] == "val"
    assert summary["manifest"] == str(tmp_path / "SHA256SUMS")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):       # done before: only the check, and what it is
        assert main(["data", "download", "coco", "--out", str(tmp_path)]) == 0
    assert "val: 1 GB" in out.getvalue() and "4 images" in out.getvalue()
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert main(["data", "download", "coco", "--split", "test", "--out",
                     str(tmp_path)]) != 0
    assert "coco has the splits val, train; not 'test'" in err.getvalue()


def test_crowdpose_annotations_are_fetched_and_the_images_explained(tmp_path, server):
    """mmpose's annotation archive (members under annotations/) lands in ROOT/annotations/;
    the images, which have no stable URL, are asked for, then the whole is checked."""
    tiny = shared_data("crowdpose-tiny")
    server.files["/crowdpose_annotations.tar"] = tar_gz_bytes({
        "annotations/mmpose_crowdpose_test.json": (tiny / "test_crowdpose.json").read_bytes(),
        "annotations/det_for_crowd_test_0.1_0.5.json":
            (tiny / "test_crowdpose_det_AP_40.json").read_bytes()})
    crowdpose = dl.DATASETS["crowdpose"]
    source = replace(crowdpose, splits={"test": (replace(
        crowdpose.splits["test"][0], url=server.url("/crowdpose_annotations.tar")),)})
    with pytest.raises(HrposeError, match=r"images is missing\. CrowdPose's images .*"
                       r"github\.com/Jeff-sjtu/CrowdPose"):
        download_dataset(source, tmp_path, progress=False)
    assert (tmp_path / "annotations" / "mmpose_crowdpose_test.json").is_file()
    (tmp_path / "images").mkdir()
    for image in tiny.glob("*.jpg"):
        shutil.copy(image, tmp_path / "images")
    summary = download_dataset(source, tmp_path, progress=False)
    assert summary["fetched"] == []           # the annotations were fetched the first time
    assert summary["check"].startswith("mmpose_crowdpose_test.json: 2 images, 5 people")


def test_coco_wholebody_images_are_fetched_and_the_annotations_asked_for(tmp_path, server):
    """COCO's image archive comes from its URL (checked by its SHA-1); the whole-body
    annotations, shared through cloud drives, are asked for by name and place; then the root
    is read as evaluation reads it (the parts joined into 133 joints)."""
    from .cocogen import random_wholebody_set

    root = shared_data("coco-tiny")
    images = tar_gz_bytes({f"val2017/{p.name}": p.read_bytes()
                           for p in sorted((root / "val2017").iterdir())})
    server.files["/zips/val2017.tar.gz"] = images
    wholebody = dl.DATASETS["coco-wholebody"]
    source = replace(wholebody, splits={"val": (Archive(
        server.url("/zips/val2017.tar.gz"), f"sha1:{hashlib.sha1(images).hexdigest()}"),)})
    with pytest.raises(HrposeError, match=r"coco_wholebody_val_v1\.0\.json is missing\. "
                       r"COCO-WholeBody's annotations .*github\.com/jin-s13/COCO-WholeBody"):
        download_dataset(source, tmp_path, progress=False)
    assert sorted(p.name for p in (tmp_path / "val2017").iterdir()) == sorted(
        p.name for p in (root / "val2017").iterdir())
    gt, _ = random_wholebody_set(1, 3, 0, 0)
    coco = json.loads((root / "annotations/person_keypoints_val2017.json").read_text())
    gt["images"] = coco["images"]
    for ann in gt["annotations"]:
        ann["image_id"] = coco["images"][0]["id"]
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations/coco_wholebody_val_v1.0.json").write_text(json.dumps(gt))
    summary = download_dataset(source, tmp_path, progress=False)
    assert summary["fetched"] == [] and summary["check"].startswith(
        f"coco_wholebody_val_v1.0.json: {len(coco['images'])} images, 3 people")
