"""hrpose: HRNet human pose estimation — train, evaluate, run and ship HRNet models.

The names below are imported on first use (PEP 562), so `import hrpose` and `hrpose --help` do
not pay for importing torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from .errors import CheckpointError, HrposeError
from .version import __version__

# public name -> the module that defines it
_LAZY = {
    "MODELS": ".models.zoo",
    "ModelSpec": ".models.zoo",
    "build_model": ".models.loading",
    "create_model": ".models.zoo",
    "get_spec": ".models.zoo",
    "Person": ".inference.person",
    "PoseEstimator": ".inference.estimator",
    "draw": ".inference.draw",
    "Skeleton": ".skeletons",
    "get_skeleton": ".skeletons",
    "load_skeleton_file": ".skeletons",
}

__all__ = ["MODELS", "CheckpointError", "HrposeError", "ModelSpec", "Person", "PoseEstimator",
           "Skeleton", "__version__", "build_model", "create_model", "draw", "get_skeleton",
           "get_spec", "load_skeleton_file"]

if TYPE_CHECKING:
    from .inference.draw import draw
    from .inference.estimator import PoseEstimator
    from .inference.person import Person
    from .models.loading import build_model
    from .models.zoo import MODELS, ModelSpec, create_model, get_spec
    from .skeletons import Skeleton, get_skeleton, load_skeleton_file


def __getattr__(name: str) -> object:
    if name not in _LAZY:
        raise AttributeError(f"module 'hrpose' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name], __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
