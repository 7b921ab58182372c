"""Fixtures shared by the tests (helpers they import live in tests/helpers.py), built once per
session where they are expensive, and the `realdata` marker, set on every test that reads
../shared/data (directly, through a helper of its module, or through a fixture)."""

from __future__ import annotations

import inspect
import threading
from pathlib import Path

import pytest
import torch

from hrpose.models.heads import TopDownModel
from hrpose.models.zoo import create_model

from .helpers import PICODET_XML, TINYPOSE_XML, official_state, randomize, shared_data


@pytest.fixture(autouse=True)
def _cpu_without_native_bf16(monkeypatch: pytest.MonkeyPatch):
    """`auto` precision resolves as on a CPU without native bf16 (fp32) in every test, whatever
    CPU runs the suite, so that results do not depend on it; tests of the choice itself fake
    the flags (test_first_contact.py). bf16 paths are tested by asking for bf16."""
    from hrpose import hardware

    flags = hardware.cpu_flags() - set(hardware.BF16_FLAGS)     # the rest (VNNI...) is real
    monkeypatch.setattr(hardware, "cpu_flags", lambda: flags)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Downloads never touch the user's cache."""
    monkeypatch.setenv("HRPOSE_HOME", str(tmp_path_factory.mktemp("hrpose_home")))


@pytest.fixture(scope="session")
def w32_official(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, TopDownModel]:
    """An official-layout checkpoint of the real HRNet-W32 (random weights) and its model."""
    model = randomize(create_model("hrnet_w32_256x192"), seed=5)
    path = tmp_path_factory.mktemp("w32") / "pose_hrnet_w32_256x192.pth"
    torch.save(official_state(model), path)
    return path, model





@pytest.fixture(scope="session")
def tinypose_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """PP-TinyPose 256x192 (the real trained model, OpenVINO IR) converted to an hrpose
    checkpoint once for the whole session: `hrpose convert`."""
    from hrpose.cli import main

    xml = shared_data(TINYPOSE_XML)
    out = tmp_path_factory.mktemp("tinypose") / "tinypose_256x192.safetensors"
    assert main(["convert", str(xml), str(out)]) == 0
    return out


@pytest.fixture(scope="session")
def tinypose_picodet():
    """PP-TinyPose with the PicoDet person detector (both real, OpenVINO), as `PoseEstimator`
    opens them by default."""
    from hrpose.inference.estimator import PoseEstimator

    return PoseEstimator(shared_data(TINYPOSE_XML), detector=shared_data(PICODET_XML))


@pytest.fixture(scope="session")
def served_estimator():
    """The service's PP-TinyPose + PicoDet, opened as `hrpose serve` opens it (fp32)."""
    from hrpose.serve.settings import open_estimator

    from .serving import tinypose_settings

    return open_estimator(tinypose_settings())


def _reads_shared_data(function: object, known: dict) -> bool:
    """Whether `function`'s source, or that of a test helper it calls (a function of the tests
    package), names shared_data."""
    if function in known:
        return known[function]
    known[function] = False               # a helper that calls itself: no answer from there
    try:
        source = inspect.getsource(function)
    except (OSError, TypeError):
        return False
    module = inspect.getmodule(function)
    helpers = [value for name, value in vars(module).items()
               if inspect.isfunction(value) and value is not function
               and value.__module__.startswith(("tests.", "conftest")) and f"{name}(" in source]
    known[function] = ("shared_data" in source or "SHARED_DATA" in source
                       or any(_reads_shared_data(h, known) for h in helpers))
    return known[function]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    known: dict = {}
    for item in items:
        functions = [getattr(item, "function", None)]
        info = getattr(item, "_fixtureinfo", None)
        if info is not None:
            functions += [d.func for defs in info.name2fixturedefs.values() for d in defs]
        if any(_reads_shared_data(f, known) for f in functions if f is not None):
            item.add_marker(pytest.mark.realdata)


@pytest.fixture
def server():
    """A local HTTP file server on 127.0.0.1 (tests/fileserver.py)."""
    from .fileserver import Server

    s = Server()
    thread = threading.Thread(target=s.serve_forever, daemon=True)
    thread.start()
    yield s
    s.shutdown()
    s.server_close()
