"""`hrpose data synth | convert | check`: the synthetic people set, data roots from labelling
tools' exports, and a look at a data set before training on it."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from ..errors import HrposeError, plural
from .common import FRACTION, count, folder

# The formats of data.importers.IMPORTERS and the sets of data.download.DATASETS (a test holds
# them equal): the CLI imports no numpy.
FORMATS = ("yolo", "cvat", "labelstudio", "dlc")
DATASETS = ("coco", "coco-wholebody", "mpii", "crowdpose", "ochuman", "person-boxes")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="data sets: generate, convert from labelling tools, check")
    data_sub = p.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    p = data_sub.add_parser(
        "synth", help="draw the synthetic people data set as a COCO keypoint root",
        description="Writes OUT/train2017/, OUT/val2017/ and OUT/annotations/"
        "person_keypoints_{train,val}2017.json: drawn 17-joint people with visibility flags, "
        "boxes and areas. The same seed gives the same data set.")
    p.add_argument("--out", type=folder, required=True, help="data root to write")
    p.add_argument("--wholebody", action="store_true",
                   help="COCO-WholeBody's layout: the same people with 6 foot, 68 face and "
                   "2 x 21 hand points in its part fields (133 joints)")
    p.add_argument("--train", type=count(), default=5000,
                   help="training images (default 5000)")
    p.add_argument("--val", type=count(), default=200,
                   help="validation images (default 200)")
    p.add_argument("--seed", type=count(0), default=0)
    p.add_argument("--workers", type=count(), help="processes (default: all cores)")
    p.add_argument("--json", action="store_true", help="print a summary object")
    p.set_defaults(func=run_synth)

    p = data_sub.add_parser(
        "convert", help="a labelling tool's export -> a data root hrpose trains on",
        description="Reads SRC in FORMAT and writes OUT as a COCO data root: OUT/train2017/, "
        "OUT/val2017/ (the images, hard-linked or copied), OUT/annotations/person_keypoints_"
        "{train,val}2017.json and OUT/annotations/keypoints.yaml, the keypoint set that "
        "training, evaluation and `hrpose data check` then read. SRC: yolo: the data YAML; "
        "cvat: annotations.xml (CVAT for images 1.1) or the COCO Keypoints JSON; labelstudio: "
        "the JSON export; dlc: CollectedData_<scorer>.csv or .h5.")
    p.add_argument("format", choices=FORMATS, metavar="FORMAT",
                   help=f"one of {', '.join(FORMATS)}")
    p.add_argument("src", metavar="SRC", help="the export to read")
    p.add_argument("--out", type=folder, required=True, help="data root to write (new or empty)")
    p.add_argument("--images", help="where the images are (default: beside the export, as "
                   "each tool lays it out)")
    p.add_argument("--keypoints", metavar="SET",
                   help="the keypoint set (a set file or a built-in name): its joint names, "
                   "order, flip pairs, links and sigmas (default: the export's names and "
                   "links, flip pairs inferred from the names, default sigmas)")
    p.add_argument("--val-fraction", type=FRACTION, default=0.1,
                   help="share of images in val when the export has no split (default 0.1)")
    p.add_argument("--json", action="store_true", help="print a summary object")
    p.set_defaults(func=run_convert)

    p = data_sub.add_parser(
        "check", help="validate a data set, print its statistics and draw a contact sheet",
        description="Reads every annotation file of DATA (a data root, or one annotation file) "
        "as training does (the same one-line errors), prints images, people, labelled joints "
        "per joint, box sizes, people per image and flip pairs whose left and right joints lie "
        "the other way round from the rest, and draws labelled people with the set's links.")
    p.add_argument("data", metavar="DATA", help="a data root or an annotation file")
    p.add_argument("--keypoints", metavar="SET", default="",
                   help="the keypoint set, as data.keypoints takes it (default: the set file "
                   "beside the annotations, else the built-in set the names are)")
    p.add_argument("--images", help="image folder (default: the split's folder in the root)")
    p.add_argument("--sheet", help="contact sheet to write (default: "
                   "data_check_<name>.jpg here; 'none' for no picture)")
    p.add_argument("--samples", type=count(), default=16,
                   help="people on the contact sheet (default 16)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run_check)

    _add_download(data_sub)


def _add_download(data_sub: argparse._SubParsersAction) -> None:
    p = data_sub.add_parser(
        "download", help="fetch COCO, COCO-WholeBody's images, MPII, CrowdPose's annotations "
        "(and check the rest: whole-body annotations, CrowdPose's images, OCHuman, the COCO "
        "person boxes) into the layout hrpose reads",
        description="Fetches NAME's archives into OUT/archives/ (an interrupted download "
        "resumes; an archive placed there by hand is used), checks each against its published "
        "checksum (else the server's length), writes their SHA-256 to OUT/SHA256SUMS (and "
        "checks any already listed there), unpacks them with progress and reads the result as "
        "evaluation will. coco: images and keypoint annotations (--split val, the default, or "
        "train); coco-wholebody: COCO's images of the split; mpii: images, mmpose's json "
        "annotations and mpii_gt_val.mat; crowdpose: mmpose's annotations and person boxes. "
        "COCO-WholeBody's annotations, CrowdPose's images, ochuman and person-boxes have no "
        "stable direct URL: the command says where to get each file and where to put "
        "it, and checks the layout when run again.")
    p.add_argument("name", choices=DATASETS, metavar="NAME", help=f"one of {', '.join(DATASETS)}")
    p.add_argument("--out", type=folder, required=True,
                   help="the data root (for person-boxes: the COCO root)")
    p.add_argument("--split", help="coco, coco-wholebody: val (default) or train; crowdpose: "
                   "test (default) or trainval; ochuman: val (default) or test")
    p.add_argument("--keep-archives", action="store_true",
                   help="keep the archives in OUT/archives/ after unpacking them")
    p.add_argument("--timeout", type=float, default=30.0,
                   help="seconds to wait for the server (default 30)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run_download)


def run_synth(args: argparse.Namespace) -> int:
    from ..data.synthetic import SynthConfig, write_dataset

    start = time.perf_counter()
    write_dataset(args.out, args.train, args.val, args.seed,
                  SynthConfig(wholebody=args.wholebody), workers=args.workers,
                  progress=not args.json)
    seconds = time.perf_counter() - start
    summary = {"out": args.out, "train": args.train, "val": args.val, "seed": args.seed,
               "seconds": round(seconds, 2)}
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"wrote {args.train} + {plural(args.val, 'image')} to {args.out} in {seconds:.1f} s")
    return 0


def _keypoint_option(value: str) -> object:
    from ..skeletons import resolve_skeleton_option

    return resolve_skeleton_option(value, "--keypoints")


def run_convert(args: argparse.Namespace) -> int:
    from ..data.dataroot import write_data_root
    from ..data.importers import read_labels
    from ..paths import check_output
    from ..skeletons import Skeleton

    check_output(args.out, [args.src, args.images, args.keypoints])
    keypoints = _keypoint_option(args.keypoints) if args.keypoints else None
    if keypoints is not None and not isinstance(keypoints, Skeleton):
        raise HrposeError(f"--keypoints {args.keypoints}: give a set file or a built-in name")
    labels = read_labels(args.format, args.src, args.images)
    summary = write_data_root(labels, args.out, keypoints, args.val_fraction,
                              f"{args.format} {args.src}")
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"{summary['train_images']} + {summary['val_images']} images, "
              f"{summary['train_people']} + {summary['val_people']} people (train + val) -> "
              f"{args.out}; keypoint set {summary['keypoint_set']!r}: "
              f"{len(summary['joints'])} joints, flip pairs {summary['flip_pairs']}, "
              f"{summary['links']} links")
        if summary["skipped_people"]:
            print(f"{summary['skipped_people']} people with no labelled joint and no box were "
                  "left out")
    return 0


def _annotation_files(data: Path) -> list[tuple[Path, Path]]:
    """(annotation file, image folder) of every split of a data root, or of one file."""
    from ..data.coco import find_dataset

    if data.is_file():
        return [find_dataset(data.parent, data)]
    splits = sorted((data / "annotations").glob("person_keypoints_*.json"))
    if not splits:
        return [find_dataset(data)]
    return [find_dataset(data, ann) for ann in splits]


def run_check(args: argparse.Namespace) -> int:
    from ..data.coco import load_keypoints
    from ..data.dataroot import data_statistics
    from ..inference.draw import contact_sheet
    from ..io import write_image

    data = Path(args.data)
    if not data.exists():
        raise HrposeError(f"{data}: no such data root or annotation file")
    keypoints = _keypoint_option(args.keypoints)
    reports, first = [], None
    for ann, images in _annotation_files(data):
        loaded = load_keypoints(ann, keypoints)
        report = data_statistics(loaded)
        report["image_folder"] = str(Path(args.images) if args.images else images)
        reports.append(report)
        first = first or (loaded, Path(args.images) if args.images else images)
    sheet = args.sheet or f"data_check_{data.stem if data.is_file() else data.name}.jpg"
    if sheet != "none" and first is not None:
        write_image(sheet, contact_sheet(*first, count=args.samples))
    skeleton = first[0].skeleton
    summary = {"keypoint_set": skeleton.to_dict(), "files": reports,
               "sheet": None if sheet == "none" else sheet}
    if args.json:
        print(json.dumps(summary))
        return 0
    print(f"keypoint set {skeleton.name!r}: {skeleton.num_joints} joints, "
          f"{len(skeleton.flip_pairs)} flip pairs, {len(skeleton.links)} links")
    for report in reports:
        _print_report(report)
    if summary["sheet"]:
        print(f"contact sheet: {sheet}")
    return 0


def _print_report(report: dict) -> None:
    sides, per_image = report["box_side_px"], report["people_per_image"]
    print(f"\n{report['file']}: {plural(report['images'], 'image')}, "
          f"{plural(report['people'], 'person', 'people')} "
          f"({per_image['mean']} per image, at most {per_image['max']}; "
          f"{report['images_without_people']} images without labelled people)")
    print(f"  box side (sqrt of area): min {sides['min']}, median {sides['median']}, "
          f"max {sides['max']} px")
    width = max(len(name) for name in report["labelled_joints"])
    print(f"  {'joint':<{width}}  labelled  visible")
    for name, n in report["labelled_joints"].items():
        print(f"  {name:<{width}}  {n:>8}  {report['visible_joints'][name]:>7}")
    for pair in report["flip_pairs"]:
        flag = "  <- suspicious: left and right look swapped" if pair["suspicious"] else ""
        print(f"  {pair['left']} / {pair['right']}: left lies right of right in "
              f"{100 * pair['left_right_of_right']:.0f}% of {pair['people']} people{flag}")


def run_download(args: argparse.Namespace) -> int:
    from ..data.download import DATASETS as SOURCES
    from ..data.download import download_dataset

    source = SOURCES[args.name]
    if not args.json and source.splits:
        print(f"{source.title}; by downloading you accept {source.terms}")
        for note in source.notes:
            print(f"  {note}")
    summary = download_dataset(source, args.out, args.split, args.keep_archives,
                               progress=not args.json, timeout=args.timeout)
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"{summary['dataset']} {summary['split']} in {summary['root']}: "
              f"{summary['check']}")
        if summary["manifest"]:
            print(f"SHA-256 of the archives: {summary['manifest']} (sha256sum -c on another "
                  "machine compares)")
    return 0
