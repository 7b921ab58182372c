"""The two extension seams of ARCHITECTURE.md: a model family is one record (its file and one
line in models/arch.py's MODEL_FAMILIES), an export format one record (export/formats.py's
FORMATS). Each test adds one the way the map says, and nothing else, and runs it."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import numpy as np
import torch

from hrpose.config import load_config, model_section
from hrpose.export import FORMATS, ExportFormat, export_model
from hrpose.export.onnx import copy_onnx
from hrpose.inference.backends import RUNTIMES, open_model
from hrpose.models import arch
from hrpose.models.arch import arch_from_dict, family_of, model_from_arch
from hrpose.models.checkpoint import save_weights
from hrpose.models.family import PAPER_FLOPS, Family
from hrpose.models.hrnet import HRNetArch
from hrpose.models.layouts import LAYOUTS
from hrpose.models.loading import initialised_model
from hrpose.models.zoo import MODELS
from hrpose.skeletons import COCO

SRC = Path(__file__).resolve().parents[1] / "src" / "hrpose"


@dataclasses.dataclass(frozen=True)
class ToyArch(HRNetArch):
    """A new family, as small as a test needs: an HRNet under another name."""

    family: str = "toynet"
    width: int = 8
    stage_modules: tuple[int, int, int] = (1, 1, 1)
    num_blocks: int = 1
    layer1_blocks: int = 1

    def to_dict(self) -> dict:
        return {**super().to_dict(), "family": "toynet"}


TOY = Family("toynet", "topdown", ToyArch, init="kaiming", paper_flops="hrnet")


def test_every_family_record_is_complete_and_the_tables_derive_from_them():
    keys = [f.key for f in arch.MODEL_FAMILIES]
    assert len(set(keys)) == len(keys)
    for family in arch.MODEL_FAMILIES:
        assert family.paper_flops in PAPER_FLOPS and set(family.layouts) <= set(LAYOUTS)
        section = model_section(family)
        assert issubclass(section, family.arch) and section().init == family.init
        assert family_of(section()) is family
    assert {family_of(spec.arch).key for spec in MODELS.values()} == set(keys)


def _string_constants(path: Path) -> list[str]:
    return [n.value for n in ast.walk(ast.parse(path.read_text()))
            if isinstance(n, ast.Constant) and isinstance(n.value, str)]


def test_no_module_branches_on_a_family_or_model_name():
    """What a family does differently is in its record, not in a name test elsewhere."""
    own = {"models/hrnet.py", "models/higherhrnet.py", "models/litehrnet.py", "models/zoo.py",
           "models/family.py", "models/arch.py", "config.py"}
    names = {f.family for f in arch.MODEL_FAMILIES} | {"tinypose", "naive", "wider"}
    for path in SRC.rglob("*.py"):
        if str(path.relative_to(SRC)) in own:
            continue
        assert not names & set(_string_constants(path)), path


def test_a_new_family_is_one_record(monkeypatch, tmp_path):
    monkeypatch.setattr(arch, "MODEL_FAMILIES", (*arch.MODEL_FAMILIES, TOY))
    restored = arch_from_dict(ToyArch(num_joints=5).to_dict())
    assert isinstance(restored, ToyArch) and restored.num_joints == 5
    assert isinstance(model_from_arch(restored.to_dict()), torch.nn.Module)
    config = load_config(None, ["model.family=toynet", "model.width=8", "data.keypoints=coco",
                                "data.input_wh=[64,64]"])
    assert isinstance(config.model, ToyArch) and config.model.init == "kaiming"
    model, note = initialised_model(config.model, config.model.init, (64, 64), COCO)
    assert note == "" and model(torch.zeros(1, 3, 64, 64)).shape == (1, 17, 16, 16)
    # a checkpoint of it carries its family in its card and opens as a model
    path = tmp_path / "toy.safetensors"
    save_weights(path, model.state_dict(), config.card().to_metadata())
    loaded = open_model(str(path))
    assert loaded.card.arch["family"] == "toynet" and loaded.runner.input_hw == (64, 64)


def _copy_through(source: Path, out: Path, calibration, fp16: bool, metadata: dict,
                  simplify: bool) -> None:
    copy_onnx(source, out, metadata, simplify)


def test_a_new_export_format_is_one_record(monkeypatch, tmp_path):
    for fmt in FORMATS.values():
        assert any(fmt.runtime == r.name and fmt.suffix in r.opens for r in RUNTIMES)
    toy = ExportFormat("plainonnx", "plain ONNX", ".onnx", "onnxruntime", (".onnx",),
                       _copy_through, fp16_from_file=False)
    monkeypatch.setitem(FORMATS, "plainonnx", toy)
    model = ToyArch().create()
    weights = tmp_path / "toy.safetensors"
    monkeypatch.setattr(arch, "MODEL_FAMILIES", (*arch.MODEL_FAMILIES, TOY))
    config = load_config(None, ["model.family=toynet", "model.width=8", "data.keypoints=coco",
                                "data.input_wh=[64,64]"])
    save_weights(weights, model.state_dict(), config.card().to_metadata())
    result = export_model(str(weights), tmp_path / "toy.onnx", "plainonnx", log=False)
    assert result.format == "plainonnx" and result.agreement.within_1px >= 0.95   # the gate
    x = np.random.default_rng(0).standard_normal((2, 3, 64, 64)).astype(np.float32)
    with torch.inference_mode():
        expected = model.eval()(torch.from_numpy(x)).numpy()
    runner = open_model(str(result.path)).runner
    assert runner.backend == "onnxruntime"
    np.testing.assert_allclose(runner(x), expected, atol=1e-4)
