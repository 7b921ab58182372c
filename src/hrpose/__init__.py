"""hrpose: HRNet human pose estimation — train, evaluate, run and ship HRNet models."""

from .errors import CheckpointError, HrposeError
from .inference.estimator import Person, PoseEstimator
from .models.zoo import MODELS, ModelSpec, build_model, create_model, get_spec

__version__ = "0.1.0"

__all__ = [
    "MODELS",
    "CheckpointError",
    "HrposeError",
    "ModelSpec",
    "Person",
    "PoseEstimator",
    "__version__",
    "build_model",
    "create_model",
    "get_spec",
]
