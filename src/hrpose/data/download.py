"""`hrpose data download`: the field's data sets fetched into the layout hrpose reads.

`DATASETS` is the table: per set, the archives of each split (URL, the published checksum
where one exists, the folder they unpack into), the files the finished root must hold, and a
check that reads the result as evaluation and training will. A set without a stable direct URL
(request forms, cloud-drive pages) has `manual`: where to get each file and where to put it;
the command prints that and checks the layout when run again.

The mechanics: archives go to `ROOT/archives/` (an interrupted download resumes from its
`.part` with an HTTP range request; an archive placed there by hand is used as it is), are
checked (the published checksum, else the server's length), hashed into `ROOT/SHA256SUMS`
(`sha256sum -c` on a second machine compares; an entry already there is checked, so a manifest
copied from elsewhere is enforced), unpacked with progress and deleted unless kept. What is done
is recorded in `ROOT/.hrpose-download.json`, so a second run only checks.
"""

from __future__ import annotations

import tarfile
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import urlparse

from tqdm import tqdm

from ..errors import HrposeError
from ..hub import DownloadError, fetch, file_digests
from ..io import atomic_path, read_json, write_json
from .coco import load_keypoints, parse_boxes
from .dataroot import annotation_file

ARCHIVES = "archives"
MANIFEST = "SHA256SUMS"
STATE = ".hrpose-download.json"


@dataclass(frozen=True)
class Archive:
    """One archive to fetch: `checksum` is "ALGORITHM:HEX" as its publisher states it (None:
    none is published; the server's length is checked), unpacked into `into` (a folder of the
    root; "" the root)."""

    url: str
    checksum: str | None = None
    into: str = ""

    @property
    def name(self) -> str:
        return PurePosixPath(urlparse(self.url).path).name


@dataclass(frozen=True)
class DataSource:
    """A data set hrpose can fetch (or explain how to fetch)."""

    name: str
    title: str
    terms: str                                      # whose terms the user accepts
    splits: dict[str, tuple[Archive, ...]]           # split -> archives
    layout: dict[str, tuple[str, ...]]               # split -> paths the root must hold
    check: Callable[[Path, str], str]                # (root, split) -> a summary line
    manual: str = ""                                 # how to get it without a stable URL
    default_split: str = "val"
    notes: tuple[str, ...] = ()                      # printed before downloading (sizes, ...)


def _check_coco(root: Path, split: str) -> str:
    return _check_keypoint_file(annotation_file(root, split), root / f"{split}2017")


def _check_keypoint_file(ann: Path, images: Path) -> str:
    """Read `ann` as evaluation does; every image it names must be in `images`."""
    data = load_keypoints(ann)
    names = {info.file_name for info in data.images.values()}
    missing = sorted(n for n in names if not (images / n).is_file())
    if missing:
        raise HrposeError(f"{images}: {len(missing)} of the {len(names)} images of {ann.name} "
                          f"are missing (first: {missing[0]})")
    labelled = int((data.num_keypoints > 0).sum())
    summary = (f"{ann.name}: {len(names)} images, {len(data)} people ({labelled} with "
               f"keypoints), all images in {images}")
    return summary + (f"; PCKh head sizes from {data.head_source}" if data.head_source else "")


def _check_wholebody(root: Path, split: str) -> str:
    return _check_keypoint_file(root / "annotations" / f"coco_wholebody_{split}_v1.0.json",
                                root / f"{split}2017")


def _check_mpii(root: Path, split: str) -> str:
    return _check_keypoint_file(root / "annotations" / "mpii_val.json", root / "images")


def _check_crowdpose(root: Path, split: str) -> str:
    return _check_keypoint_file(root / "annotations" / f"mmpose_crowdpose_{split}.json",
                                root / "images")


def _check_ochuman(root: Path, split: str) -> str:
    return _check_keypoint_file(
        root / "annotations" / f"ochuman_coco_format_{split}_range_0.00_1.00.json",
        root / "images")


def _check_person_boxes(root: Path, split: str) -> str:
    path = root / PERSON_BOXES
    entries = read_json(path)
    if not isinstance(entries, list):
        raise HrposeError(f"{path}: expected a list of detections")
    boxes = parse_boxes(path, entries, 1, "detection #")
    return f"{path.name}: {len(boxes.scores)} person boxes on {len(set(boxes.image_ids))} images"


COCO_ZIPS = "http://images.cocodataset.org/"
# SHA-1 digests as GluonCV's and Detectron's download scripts publish them.
COCO_ANNOTATIONS = Archive(COCO_ZIPS + "annotations/annotations_trainval2017.zip",
                           "sha1:8551ee4bb5860311e79dace7e79cb91e432e78b3")
PERSON_BOXES = "person_detection_results/COCO_val2017_detections_AP_H_56_person.json"

DATASETS: dict[str, DataSource] = {s.name: s for s in (
    DataSource(
        "coco", "COCO 2017 keypoints: images and person_keypoints_{train,val}2017.json",
        "COCO's terms of use (annotations CC BY 4.0; images under their Flickr licences)",
        {"val": (COCO_ANNOTATIONS,
                 Archive(COCO_ZIPS + "zips/val2017.zip",
                         "sha1:4950dc9d00dbe1c933ee0170f5797584351d2a41")),
         "train": (COCO_ANNOTATIONS,
                   Archive(COCO_ZIPS + "zips/train2017.zip",
                           "sha1:10ad623668ab00c62c096f0ed636d6aff41faca5"))},
        {"val": ("annotations/person_keypoints_val2017.json", "val2017"),
         "train": ("annotations/person_keypoints_train2017.json", "train2017")},
        _check_coco,
        notes=("val: 1 GB (778 MB images, 241 MB annotations); train: 19 GB",
               "the person boxes of the published results: hrpose data download person-boxes "
               "--out the same folder")),
    DataSource(
        "coco-wholebody", "COCO-WholeBody v1.0: COCO 2017 images, the whole-body annotations by "
        "hand", "COCO's terms of use and COCO-WholeBody's (annotations for research)",
        {"val": (Archive(COCO_ZIPS + "zips/val2017.zip",
                         "sha1:4950dc9d00dbe1c933ee0170f5797584351d2a41"),),
         "train": (Archive(COCO_ZIPS + "zips/train2017.zip",
                           "sha1:10ad623668ab00c62c096f0ed636d6aff41faca5"),)},
        {split: (f"annotations/coco_wholebody_{split}_v1.0.json", f"{split}2017")
         for split in ("val", "train")},
        _check_wholebody, manual=(
            "COCO-WholeBody's annotations (coco_wholebody_{train,val}_v1.0.json) are shared "
            "through the Google Drive and Baidu links of https://github.com/jin-s13/"
            "COCO-WholeBody (no stable direct URL): put them in ROOT/annotations/. The images "
            "are COCO 2017's (ROOT/val2017/, ROOT/train2017/), so ROOT can be the COCO root."),
        notes=("val: 778 MB of images; train: 18 GB",
               "the annotations are fetched by hand (below); the person boxes of the "
               "published results: hrpose data download person-boxes --out the same folder")),
    DataSource(
        "mpii", "MPII Human Pose: images, mmpose's json annotations and mpii_gt_val.mat",
        "MPII Human Pose's research-only terms (human-pose.mpi-inf.mpg.de)",
        {"all": (Archive("https://download.openmmlab.com/mmpose/datasets/mpii_annotations.tar",
                         into="annotations"),
                 Archive("https://datasets.d2.mpi-inf.mpg.de/andriluka14cvpr/"
                         "mpii_human_pose_v1.tar.gz"))},
        {"all": ("annotations/mpii_train.json", "annotations/mpii_val.json",
                 "annotations/mpii_gt_val.mat", "images")},
        _check_mpii, default_split="all",
        notes=("13 GB; no checksums are published: the server's lengths are checked and "
               "SHA256SUMS written",)),
    DataSource(
        "crowdpose", "CrowdPose: mmpose's annotations and person boxes; the images by hand",
        "CrowdPose's terms",
        {split: (Archive("https://download.openmmlab.com/mmpose/datasets/"
                         "crowdpose_annotations.tar", into="annotations"),)
         for split in ("test", "trainval")},
        {"test": ("annotations/mmpose_crowdpose_test.json",
                  "annotations/det_for_crowd_test_0.1_0.5.json", "images"),
         "trainval": ("annotations/mmpose_crowdpose_trainval.json", "images")},
        _check_crowdpose, default_split="test", manual=(
            "CrowdPose's images are shared through Google Drive links on "
            "https://github.com/Jeff-sjtu/CrowdPose (no stable direct URL): download "
            "images.zip there and put its images in ROOT/images/.")),
    DataSource(
        "ochuman", "OCHuman: images and the COCO-format val / test annotations",
        "OCHuman's terms", {},
        {"val": ("annotations/ochuman_coco_format_val_range_0.00_1.00.json", "images"),
         "test": ("annotations/ochuman_coco_format_test_range_0.00_1.00.json", "images")},
        _check_ochuman, manual=(
            "OCHuman is shared after a request form, through links on "
            "https://github.com/liruilong940607/OCHumanApi (no stable direct URL). Put "
            "images.tar.gz's images in ROOT/images/ and "
            "ochuman_coco_format_{val,test}_range_0.00_1.00.json in ROOT/annotations/.")),
    DataSource(
        "person-boxes", "COCO val2017 person boxes of the published results (AP 56.4)",
        "COCO's terms of use", {}, {"val": (PERSON_BOXES,)}, _check_person_boxes, manual=(
            "The detector boxes HRNet, mmpose and this project's COCO results use "
            "(COCO_val2017_detections_AP_H_56_person.json) are shared through the Google "
            "Drive and OneDrive links of https://github.com/leoxiaobin/"
            "deep-high-resolution-net.pytorch (no stable direct URL). Put the file in "
            f"ROOT/{PERSON_BOXES}, ROOT being the COCO root.")),
)}


def download_dataset(source: DataSource, root: str | Path, split: str | None = None,
                     keep_archives: bool = False, progress: bool = True,
                     timeout: float = 30.0) -> dict:
    """Fetch, check, unpack and verify `source`'s `split` into `root`; returns a summary.
    A set without a stable URL: its layout is checked, and when incomplete the error says
    where to get each file and where to put it."""
    root = Path(root)
    split = split or source.default_split
    if split not in source.layout:
        raise HrposeError(f"{source.name} has the splits {', '.join(source.layout)}; not "
                          f"{split!r}")
    archives = source.splits.get(split, ())
    root.mkdir(parents=True, exist_ok=True)
    state = _read_state(root)
    fetched = []
    for archive in archives:
        if state.get(archive.name, {}).get("done"):
            continue
        _fetch_checked(archive, root, progress, timeout)
        _unpack(root / ARCHIVES / archive.name, root, archive.into, progress)
        if not keep_archives:
            (root / ARCHIVES / archive.name).unlink()
        state[archive.name] = {"done": True, "url": archive.url}
        write_json(root / STATE, state, indent=True)
        fetched.append(archive.name)
    missing = _missing(root, source.layout[split])
    if missing and source.manual:
        raise HrposeError(f"{source.name}: {root / missing[0]} is missing. "
                          + source.manual.replace("ROOT", str(root)))
    if missing:
        found = sorted(str(p.relative_to(root)) for p in root.rglob(Path(missing[0]).name))
        if found:
            why = f" (found at {found[0]}: move it there)"
        elif fetched:
            why = " after unpacking"
        else:
            why = (f"; its archives are recorded as unpacked in {root / STATE}: delete that "
                   "file to fetch them again")
        raise HrposeError(f"{source.name}: {root / missing[0]} is missing{why}")
    summary = source.check(root, split)
    return {"dataset": source.name, "split": split, "root": str(root), "fetched": fetched,
            "check": summary, "manifest": str(root / MANIFEST) if archives else None}


def _missing(root: Path, paths: tuple[str, ...]) -> list[str]:
    return [p for p in paths if not (root / p).exists()]


def _read_state(root: Path) -> dict:
    if not (root / STATE).is_file():
        return {}
    state = read_json(root / STATE)
    return state if isinstance(state, dict) else {}


def _fetch_checked(archive: Archive, root: Path, progress: bool, timeout: float) -> None:
    """The archive in ROOT/archives/, fetched (or resumed, or as placed there by hand),
    checked, and its SHA-256 recorded in the manifest."""
    folder = root / ARCHIVES
    folder.mkdir(parents=True, exist_ok=True)
    path, part = folder / archive.name, folder / (archive.name + ".part")
    if not path.is_file():
        hint = (f"download it on a connected machine and put it in {folder} as "
                f"{archive.name}, then run this again")
        fetch(archive.url, part, hint, progress, timeout)
        part.replace(path)
    algorithm, expected = (archive.checksum.split(":", 1) if archive.checksum
                           else ("sha256", None))
    digests = file_digests(path, tuple({"sha256", algorithm}), progress)
    if expected is not None and digests[algorithm] != expected:
        path.unlink()
        raise DownloadError(f"{archive.url}: the {algorithm.upper()} of the download is "
                            f"{digests[algorithm]}, the published one {expected}; the "
                            "corrupt file was deleted, run again")
    manifest = _read_manifest(root / MANIFEST)
    listed = manifest.get(f"{ARCHIVES}/{archive.name}")
    if listed is not None and listed != digests["sha256"]:
        path.unlink()
        raise DownloadError(f"{path}: its SHA-256 {digests['sha256']} is not the "
                            f"{listed} that {root / MANIFEST} lists; the file was deleted, "
                            "run again (or remove the line if the manifest is out of date)")
    manifest[f"{ARCHIVES}/{archive.name}"] = digests["sha256"]
    text = "".join(f"{digest}  {name}\n" for name, digest in sorted(manifest.items()))
    with atomic_path(root / MANIFEST) as tmp:
        tmp.write_text(text)


def _read_manifest(path: Path) -> dict[str, str]:
    """`sha256sum`'s format: "<hex>  <name>" a line."""
    if not path.is_file():
        return {}
    entries = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        digest, _, name = line.partition("  ")
        if len(digest) != 64 or not name:
            raise HrposeError(f"{path}: line {number} is not '<sha256>  <file>'")
        entries[name.strip()] = digest.lower()
    return entries


def _unpack(path: Path, root: Path, folder: str, progress: bool) -> None:
    """Unpack a zip or tar archive into `root / folder` (an archive whose members all sit in
    a folder of that name into `root`), with progress; members that would land outside it are
    refused. A damaged or truncated archive is deleted (the next run fetches it afresh)."""
    into = root / folder
    into.mkdir(parents=True, exist_ok=True)
    try:
        if folder and _top_folder(path) == PurePosixPath(folder).name:
            into = into.parent
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                members = archive.infolist()
                for member in members:
                    _inside(into, member.filename, path)
                total = sum(m.file_size for m in members)
                with tqdm(total=total, unit="B", unit_scale=True, desc=f"unpacking {path.name}",
                          disable=not progress, leave=False) as bar:
                    for member in members:
                        archive.extract(member, into)
                        bar.update(member.file_size)
        else:
            with tarfile.open(path) as archive, tqdm(
                    unit="B", unit_scale=True, desc=f"unpacking {path.name}",
                    disable=not progress, leave=False) as bar:
                for member in archive:
                    _inside(into, member.name, path)
                    archive.extract(member, into, **_TAR_FILTER)
                    bar.update(member.size)
    except OSError as e:           # a full disk, permissions: the archive is kept
        raise HrposeError(f"cannot unpack {path} into {into}: {e.strerror or e}") from None
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, ValueError, zlib.error) as e:
        path.unlink(missing_ok=True)
        raise HrposeError(f"{path}: the archive is damaged or truncated ({e}); it was "
                          "deleted, run again to fetch it afresh") from None


def _top_folder(path: Path) -> str | None:
    """The one folder every member of the archive sits in, if there is one."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    else:
        with tarfile.open(path) as archive:
            names = archive.getnames()
    tops = {PurePosixPath(name).parts[0] for name in names if PurePosixPath(name).parts}
    nested = all(len(PurePosixPath(name).parts) > 1 or name.rstrip("/") in tops
                 for name in names)
    return tops.pop() if len(tops) == 1 and nested else None


# Python's safe extraction (no links out, no device files) where it has it (3.11.4+).
_TAR_FILTER = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}


def _inside(root: Path, name: str, archive: Path) -> None:
    target = (root / name).resolve()
    if not target.is_relative_to(root.resolve()):
        raise HrposeError(f"{archive}: member {name!r} would be written outside {root}; "
                          "refusing to unpack it")
