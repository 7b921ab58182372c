"""`hrpose export`: a zoo model, checkpoint or exported file from elsewhere -> an ONNX or
OpenVINO file in fp32, FP16 or INT8, verified against its source on the same inputs (person
crops; a bottom-up model's whole images, people grouped) and carrying the metadata that lets
`PoseEstimator`, `hrpose eval` and `hrpose infer` run it alone. A bottom-up file's input height
and width vary and it keeps both outputs, so the flip test and multi-scale still run."""

from __future__ import annotations

import os
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from ..codecs.heatmap import HeatmapCodec
from ..data.transforms import normalize
from ..errors import HrposeError, plural
from ..inference.backends import (
    LoadedModel,
    Runner,
    TorchRunner,
    exported_file,
    open_exported,
    open_model,
)
from ..inference.bottomup import scale_matrix
from ..inference.options import RuntimeOptions
from ..inference.topdown import decode_keypoints
from ..io import read_image, write_failure
from ..models.card import ModelCard
from ..models.pact import is_pact
from ..paths import check_output
from ..skeletons import unnamed_skeleton
from ..version import __version__
from .calibration import (
    AnnotatedImages,
    People,
    cut_people,
    draw_evenly,
    held_out,
    image_sources,
    mirrored,
    person_crops,
    synthetic_crops,
    synthetic_images,
)
from .formats import FORMATS, export_format
from .onnx import export_onnx
from .verify import (
    Agreement,
    bottomup_ap,
    compare,
    compare_heatmaps,
    compare_people,
    oks_agreement,
    run_batched,
    topdown_ap,
)

VERIFY_CROPS = 64
# The share of joints an export must decode within one heatmap pixel of its source on the
# verification crops, or it is refused (unless `force`). A float export (fp32, FP16) computes
# the same function up to rounding: 100% on every model measured, so 95% leaves room only for
# near-ties of flat heatmaps. INT8 moves peaks on flat or double-peaked heatmaps: PP-TinyPose
# INT8 keeps 95.5% (OpenVINO) and 94.4% (ONNX), AP -0.026 on coco-mini-train; the exports this
# check exists for kept 19% (ONNX INT8 with quantised depthwise convolutions, AP 0.81 -> 0.02)
# and 22% (a PACT model on OpenVINO without VNNI, whose int16 pair sums saturate).
MIN_AGREEMENT = {"fp32": 0.95, "fp16": 0.95, "int8": 0.85}
# A bottom-up model is compared on this many whole images, on the people both runs group.
# Grouping passes small changes of the maps on to whole joints (a tag distance rounded the
# other way, a refined joint's flat maximum), so the same AP keeps fewer joints in place than
# top-down: the bottom-up quickstart (AP 0.451 on synthetic val) keeps 100% in fp32 exports
# (AP -0.0006), 84.7% with FP16 weights (AP -0.004) and 61.5% in INT8 (AP -0.015); a file
# computing something else keeps almost none. Its INT8 export, calibrated on annotated data,
# is scored by COCO AP on up to AP_IMAGES of them instead, and refused when it loses more
# than MAX_AP_DROP of the source's AP.
MIN_AGREEMENT_BOTTOMUP = {"fp32": 0.95, "fp16": 0.75, "int8": 0.5}
# An AP below MIN_SCORED_AP (a model that barely works on that data) judges nothing: the
# agreement rule applies then.
VERIFY_IMAGES = 8
AP_IMAGES = 100
MAX_AP_DROP = 0.02
MIN_SCORED_AP = 0.1
# A top-down INT8 export is judged on people calibration did not see (calibration.held_out):
# by COCO AP against the ground truth when they are annotated (at least MIN_AP_PEOPLE of them,
# else AP is too coarse), within MAX_AP_DROP of the source's; otherwise by the mean OKS of its
# joints to the source's (verify.oks_agreement), at least MIN_OKS. Joints within one heatmap
# pixel judge INT8 badly: PP-TinyPose INT8 (OpenVINO) calibrated on coco-mini-train keeps 68.7%
# of them on its 86 people and loses only AP 0.018 there (0.581 -> 0.563), at mean OKS 0.922
# to the source; calibrated on three tiny sets, 68.8%, OKS 0.927, AP 0.552; calibrated on black
# images (a broken file) 8.7%, OKS 0.538, AP 0.086 (benchmarks/int8_gate.py).
MIN_OKS = 0.9
MIN_AP_PEOPLE = 15


@dataclass
class ExportResult:
    path: Path
    format: str
    precision: str                  # fp32, fp16 or int8: the file's weights
    reference: str                  # what it was verified against
    agreement: Agreement
    calibration_crops: int
    seconds: float

    def as_dict(self) -> dict:
        return {"path": str(self.path), "format": self.format, "precision": self.precision,
                "reference": self.reference, "agreement": self.agreement.as_dict(),
                "calibration_crops": self.calibration_crops,
                "seconds": round(self.seconds, 2)}


def default_output(model: str, format: str, precision: str) -> Path:
    """`hrnet_w32_256x192_int8.xml` for a zoo name; for a file, its stem (its folder's name when
    the file is a generic `model.*`)."""
    path = Path(model)
    stem = path.stem if path.suffix else path.name
    if stem in ("model", "inference", "best", "latest") and path.suffix:
        stem = path.parent.name or stem
    return Path(f"{stem}_{precision}{export_format(format).suffix}")


def _metadata(model: str, loaded: LoadedModel, input_hw: tuple[int, int], precision: str
              ) -> dict[str, str]:
    """The source's card as the exported file states it: its input size, its weights'
    precision (the graph is already quantised: no PACT layers to rebuild)."""
    card = replace(loaded.card, input_hw=input_hw, precision=precision, quant="")
    return card.with_extra(source=Path(model).name,
                           exported_by=f"hrpose {__version__}").to_metadata()


def export_model(model: str, out: str | Path | None = None, format: str = "onnx", *,
                 weights: str | None = None, fp16: bool = False, int8: bool = False,
                 calib: Sequence[str] = (), detector: object | None = None,
                 dynamic_batch: bool = True, batch: int = 1, simplify: bool = True,
                 calib_limit: int = 300, force: bool = False, log: bool = True
                 ) -> ExportResult:
    """Exports `model` (a zoo name with `weights`, default "published"; a checkpoint; or an
    .onnx / .xml file) to `out`. INT8 needs `calib`: folders, images or globs whose people
    (annotation boxes, else `detector`'s, else the whole image) are the calibration crops; a
    bottom-up model calibrates on the whole images (at most `calib_limit` of each).

    The file is written beside `out` under a temporary name, run against its source on the
    same inputs, and moved to `out` only if it keeps MIN_AGREEMENT of the joints, or for a
    bottom-up INT8 export calibrated on annotated data its AP within MAX_AP_DROP (or `force`):
    a broken export raises HrposeError and leaves nothing under `out`."""
    start = time.perf_counter()
    precision = _check_options(format, out, fp16, int8, calib, batch, calib_limit)

    def say(message: str) -> None:
        if log:
            print(message, file=sys.stderr, flush=True)

    # a zoo name: its published weights
    loaded = open_model(model, RuntimeOptions(precision="fp32"), weights)
    reference = loaded.runner
    pact = isinstance(reference, TorchRunner) and is_pact(reference.model)
    if pact:
        if int8 or fp16:
            raise HrposeError(f"{model}: a PACT-trained model is INT8 already (its export "
                              "carries its own quantisation); drop --int8 / --fp16")
        precision = "int8"
    out = Path(out) if out is not None else default_output(model, format, precision)
    input_hw = reference.input_hw
    metadata = _metadata(model, loaded, input_hw, "int8 (PACT)" if pact else precision)
    source = None
    if isinstance(reference, TorchRunner):
        reference_name = "PyTorch fp32"
    else:
        source = exported_file(model)
        check_output(out, [source, source.with_suffix(".bin")], flag="--out", folder=False)
        reference_name = f"{source.name} fp32"
        target = export_format(format)
        if source.suffix.lower() not in target.reads:
            others = [f.name for f in FORMATS.values() if source.suffix.lower() in f.reads]
            raise HrposeError(f"{source}: a {source.suffix} file cannot be turned back into "
                              f"{target.title}; use --format {' or '.join(others)}")
        if fp16 and not target.fp16_from_file:
            raise HrposeError(f"{source}: FP16 of an {target.title} file from elsewhere is not "
                              "supported; use --format openvino --fp16")
    fixed = getattr(reference, "fixed_batch", None) or (None if dynamic_batch else batch)
    if loaded.card.bottomup:
        samples = _bottomup_samples(loaded, calib, calib_limit, int8, fixed, say)
    else:
        samples = _topdown_samples(loaded, calib, calib_limit, int8, fixed, detector, say)
    try:
        agreement = _write(reference, source, out, format, precision, metadata, samples,
                           reference_name, fp16=fp16, int8=int8, dynamic_batch=dynamic_batch,
                           batch=batch, simplify=simplify, force=force,
                           bottomup=loaded.card.bottomup, say=say)
    except HrposeError:
        raise
    except Exception as e:            # a full disk while writing or converting the file
        failure = write_failure(e, out)
        if failure is None:
            raise
        raise failure from None
    return ExportResult(out, format, precision, reference_name, agreement,
                        len(samples.calibration), time.perf_counter() - start)


@dataclass
class Samples:
    """What an export is checked and calibrated on: `check` measures a runner of the staged
    file against the source (the source's side computed once), `calibration` holds the INT8
    batches (normalised float32)."""

    check: Callable[[Runner], Agreement]
    calibration: list[np.ndarray]


def _topdown_samples(loaded: LoadedModel, calib: Sequence[str], limit: int, int8: bool,
                     fixed: int | None, detector: object | None, say: Callable[[str], None]
                     ) -> Samples:
    """Person crops: of the calibration images' people, else of synthetic people. INT8 holds
    people out of calibration (held_out) and is judged on them: by COCO AP where they are
    annotated, else by OKS to the source's joints."""
    input_hw = loaded.runner.input_hw
    if not calib:
        crops = synthetic_crops(input_hw, VERIFY_CROPS)
    elif not int8:
        crops = person_crops(calib, input_hw, detector, VERIFY_CROPS)
    else:
        return _int8_topdown_samples(loaded, cut_people(calib, input_hw, detector), calib,
                                     limit, fixed, say)
    x = normalize(crops, loaded.card.mean, loaded.card.std)
    reference = run_batched(loaded.runner, x)
    return Samples(lambda runner: compare(loaded.runner, runner, x,
                                          reference_heatmaps=reference), [])


def _int8_topdown_samples(loaded: LoadedModel, people: People, calib: Sequence[str],
                          limit: int, fixed: int | None, say: Callable[[str], None]) -> Samples:
    card, reference = loaded.card, loaded.runner
    held, used = held_out(people, VERIFY_CROPS)
    separate = not np.array_equal(held, used)
    x = normalize(mirrored(people.crops[used], limit), card.mean, card.std)
    say(f"calibrating on {len(x)} crops (people of "
        f"{plural(len(np.unique(people.image[used])), 'image')}, each also mirrored) from "
        f"{', '.join(map(str, calib))}; "
        + (f"judging on {plural(len(held), 'held-out person', 'held-out people')}" if separate
           else "one image: judging on the calibration people themselves"))
    checked = normalize(people.crops[held], card.mean, card.std)
    heatmaps = run_batched(reference, checked)
    h, w = reference.input_hw
    codec = HeatmapCodec((w, h), (heatmaps.shape[3], heatmaps.shape[2]))
    expected = decode_keypoints(heatmaps, people.matrices[held], codec)
    sigmas = (card.keypoints or unnamed_skeleton(heatmaps.shape[1])).sigmas
    scored = len(held) >= MIN_AP_PEOPLE and _scores_people(people, held, heatmaps.shape[1],
                                                           card)
    reference_ap = topdown_ap(expected, people, held) if scored else None
    if reference_ap:
        say(f"the source scores COCO AP {reference_ap[0]:.3f} on the held-out "
            f"{reference_ap[1]}")

    def check(runner: Runner) -> Agreement:
        maps = run_batched(runner, checked)             # one pass: agreement and keypoints
        found = decode_keypoints(maps, people.matrices[held], codec)
        agreement = replace(compare_heatmaps(heatmaps, maps), held_out=separate,
                            oks=oks_agreement(expected, found, people.boxes[held], sigmas))
        if reference_ap is None:
            return agreement
        ap, data = topdown_ap(found, people, held)
        return replace(agreement, reference_ap=reference_ap[0], ap=ap, ap_data=data)

    return Samples(check, _calibration_batches(x, fixed or 1))


def _scores_people(people: People, rows: np.ndarray, joints: int, card: ModelCard) -> bool:
    """Whether people `rows` can score the model by COCO AP: every one of them is annotated,
    in OKS-scored data sets of the model's joints."""
    for r in rows:
        where = people.annotated[people.image[r]]
        if where is None:
            return False
        skeleton = where[0].data.skeleton
        if where[0].data.kind == "mpii" or skeleton.num_joints != joints or (
                card.keypoints is not None and skeleton.joints != card.keypoints.joints):
            return False
    return True


def _bottomup_samples(loaded: LoadedModel, calib: Sequence[str], limit: int, int8: bool,
                      fixed: int | None, say: Callable[[str], None]) -> Samples:
    """Whole images: the calibration images (at most `limit`, drawn evenly), else synthetic
    ones. An INT8 export calibrated on annotated data is also scored by COCO AP, on the
    annotated images calibration did not use (all of them when it used every one)."""
    card, skeleton = loaded.card, loaded.bottomup_keypoint_set()
    if fixed not in (None, 1):
        raise HrposeError(f"a bottom-up model's images differ in size: export it with any "
                          f"batch size or a batch of 1, not {fixed}")
    paths, annotated = image_sources(calib, card.keypoints) if calib else ([], [])
    chosen = draw_evenly(paths, limit)
    # each image read once: all of them to calibrate on, the first ones to compare on
    pictures = [read_image(p) for p in (chosen if int8 else chosen[:VERIFY_IMAGES])]
    images = pictures[:VERIFY_IMAGES] if calib else synthetic_images(VERIFY_IMAGES)
    calibration = [x for image in pictures for x in _bottomup_inputs(image, card)] \
        if int8 else []
    scored = _held_out(annotated, set(chosen)) if int8 else []
    if int8:
        say(f"calibrating on {plural(len(pictures), 'image')}, each also mirrored, from "
            f"{', '.join(map(str, calib))}")
    reference_ap = (bottomup_ap(loaded.runner, scored, card, skeleton) if scored else None)

    def check(runner: Runner) -> Agreement:
        agreement = compare_people(loaded.runner, runner, images, card, skeleton)
        if reference_ap is None:
            return agreement
        return replace(agreement, reference_ap=reference_ap,
                       ap=bottomup_ap(runner, scored, card, skeleton),
                       ap_data=", ".join(s.describe() for s in scored))

    return Samples(check, calibration)


def _held_out(annotated: list[AnnotatedImages], used: set[Path]) -> list[AnnotatedImages]:
    """The annotated images calibration did not use, at most AP_IMAGES (all of them when it
    used every one)."""
    kept = []
    for images in annotated:
        ids = [i for i, p in zip(sorted(images.data.images), images.paths()) if p not in used]
        ids = draw_evenly(ids or sorted(images.data.images), AP_IMAGES)
        kept.append(AnnotatedImages(images.data.subset(ids), images.image_dir))
    return kept


def _bottomup_inputs(image: np.ndarray, card: ModelCard) -> list[np.ndarray]:
    """Two calibration inputs of one image: as the bottom-up pipeline feeds it (short side
    the input size) and mirrored, as the flip test adds it."""
    matrix, (w, h) = scale_matrix(image.shape[:2], card.input_hw[0])
    resized = cv2.warpAffine(image, matrix, (w, h), flags=cv2.INTER_LINEAR)
    x = normalize(resized[None], card.mean, card.std)
    return [np.ascontiguousarray(x), np.ascontiguousarray(x[..., ::-1])]


def _write(reference: object, source: Path | None, out: Path, format: str, precision: str,
           metadata: dict[str, str], samples: Samples, reference_name: str, *, fp16: bool,
           int8: bool, dynamic_batch: bool, batch: int, simplify: bool, force: bool,
           bottomup: bool, say: Callable[[str], None]) -> Agreement:
    """Writes the export beside `out` under a temporary name, verifies it, moves it to
    `out`."""
    target = export_format(format)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{out.stem}.", dir=out.parent) as work:
        staged = Path(work) / f"model{out.suffix}"
        quantise = samples.calibration if int8 else None
        making = (f"{'quantising to INT8' if int8 else 'writing'} {target.title} "
                  f"{precision}")
        if isinstance(reference, TorchRunner):
            # torch writes ONNX: a float ONNX export is that file, anything else is made from it
            direct = target.from_torch and not int8
            onnx_file = staged if direct else Path(work) / "fp32.onnx"
            say(f"export: tracing the PyTorch model to ONNX{'' if direct else ' (fp32)'}")
            export_onnx(reference.model, reference.input_hw, onnx_file, metadata,
                        fp16=fp16 and direct, dynamic_batch=dynamic_batch, batch=batch,
                        simplify=simplify, bottomup=bottomup)
            if not direct:
                say(f"export: {making}")
                target.write(onnx_file, staged, quantise, fp16, metadata, simplify)
        else:
            say(f"export: {making} from {source.name}")
            target.write(source, staged, quantise, fp16, metadata, simplify)
        say(f"export: checking the {precision} file against {reference_name}")
        need = (MIN_AGREEMENT_BOTTOMUP if bottomup else MIN_AGREEMENT)[precision]
        agreement = _verify(staged, samples, f"{out}: the {format} {precision} export",
                            reference_name, need, force)
        _publish(staged, out, target.companions)
    return agreement


def _check_options(format: str, out: str | Path | None, fp16: bool, int8: bool,
                   calib: Sequence[str], batch: int, calib_limit: int) -> str:
    """The export's precision, once its options agree."""
    target = export_format(format)
    if fp16 and int8:
        raise HrposeError("choose one of --fp16 and --int8")
    if int8 and not calib:
        raise HrposeError("INT8 needs calibration images: --calib FOLDER (a data set, a folder "
                          "of images or a glob)")
    if batch < 1 or calib_limit < 1:
        raise HrposeError(f"batch and calib_limit must be at least 1, got {batch}, "
                          f"{calib_limit}")
    if out is not None and Path(out).suffix.lower() != target.suffix:
        raise HrposeError(f"{out}: an {target.title} model is written as a {target.suffix} "
                          "file")
    return "int8" if int8 else "fp16" if fp16 else "fp32"


def _verify(staged: Path, samples: Samples, what: str, reference_name: str, need: float,
            force: bool) -> Agreement:
    """The staged file against its source, judged by `judge` (written with a warning when
    `force`)."""
    exported = open_exported(staged, RuntimeOptions(precision="fp32"))
    agreement = samples.check(exported)
    del exported                  # an OpenVINO model holds its file open until released
    message = judge(agreement, need, what, reference_name)
    if message:
        if not force:
            raise HrposeError(f"{message}; nothing was written (--force writes it anyway)")
        warnings.warn(f"{message}; written because of --force", stacklevel=3)
    return agreement


def judge(agreement: Agreement, need: float, what: str = "the export",
          reference_name: str = "the source") -> str | None:
    """Why an export is refused, or None. Scored by AP (the source scoring at least
    MIN_SCORED_AP there): more than MAX_AP_DROP below the source's. Else by OKS (top-down
    INT8): below MIN_OKS. Else: fewer than `need` of the joints within 1 heatmap px."""
    if agreement.ap is not None and agreement.reference_ap >= MIN_SCORED_AP:
        if agreement.reference_ap - agreement.ap <= MAX_AP_DROP:
            return None
        return (f"{what} scores COCO AP {agreement.ap:.3f} on {agreement.ap_data}, "
                f"{agreement.reference_ap - agreement.ap:.3f} below {reference_name}'s "
                f"{agreement.reference_ap:.3f}; an export may lose at most {MAX_AP_DROP}")
    if agreement.oks is not None:
        if agreement.oks >= MIN_OKS:
            return None
        return (f"{what} places joints at mean OKS {agreement.oks:.3f} to {reference_name}'s "
                f"on {agreement.crops} {'held-out' if agreement.held_out else 'calibration'} "
                f"people, below the {MIN_OKS} an export must keep")
    if agreement.within_1px >= need:
        return None
    return (f"{what} disagrees with {reference_name}: {100 * agreement.within_1px:.1f}% of "
            f"joints within 1 heatmap px, below the {100 * need:.0f}% an export must keep")


def _publish(staged: Path, out: Path, companions: tuple[str, ...]) -> None:
    """Moves a verified export into place: its companions (an IR's .bin) before the file, so a
    reader never pairs a new .xml with an old .bin."""
    for suffix in companions:
        os.replace(staged.with_suffix(suffix), out.with_suffix(suffix))
    os.replace(staged, out)


def _calibration_batches(x: np.ndarray, size: int) -> list[np.ndarray]:
    """Whole batches of `size` crops (a fixed-batch model takes no other size)."""
    if len(x) < size:
        x = np.concatenate([x] * -(-size // len(x)))
    return [np.ascontiguousarray(x[i : i + size]) for i in range(0, len(x) - size + 1, size)]
