"""`hrpose info`: what each zoo model is (joints, input, outputs, parameters, MACs, published
figures, weights), from facts recorded in models/facts.json (generated data) so that the table
prints without building a model or importing torch. `measure` recounts them from the zoo; a
test holds the recorded facts equal to the live count; `python -m hrpose.info` rewrites them."""

from __future__ import annotations

import json
from pathlib import Path

from .errors import HrposeError

FACTS_FILE = Path(__file__).parent / "models" / "facts.json"
FACTS: dict[str, dict] = json.loads(FACTS_FILE.read_text())


def measure(name: str) -> dict:
    """The facts of zoo model `name`, counted on the meta device (no memory, no weights)."""
    from .models.arch import family_of
    from .models.complexity import measure as count
    from .models.zoo import create_model, get_spec

    spec = get_spec(name)
    c = count(create_model(name, device="meta"), (3, *spec.input_hw), spec.paper_unit)
    paper = ((round(spec.published["paper_MFLOPs"] / 1000, 4)
              if "paper_MFLOPs" in spec.published else None)
             if spec.paper_flops.divisor is None else round(c.paper_gflops, 1))
    return {
        "name": name, "keypoints": spec.keypoints, "num_joints": spec.num_joints,
        "kind": spec.kind, "input_shape": list(c.input_shape),
        "output_shape": list(c.output_shapes[0]),
        "output_shapes": [list(o) for o in c.output_shapes],
        "params": c.params, "macs": c.macs, "gmacs": round(c.gmacs, 2),
        "official_macs": c.official_macs, "paper_gflops": paper,
        "paper_flops": family_of(spec.arch).paper_flops,
        "gflops": round(2 * c.gmacs, 2), "mean": list(spec.mean), "std": list(spec.std),
        "published": dict(spec.published), "weights_url": spec.weights_url,
    }


def model_info(name: str) -> dict:
    """The recorded facts of `name`, and where its weights are cached if they are."""
    from .hub import cached_path

    if name not in FACTS:
        raise HrposeError(f"unknown model {name!r}; known models: {', '.join(FACTS)}")
    info = json.loads(json.dumps(FACTS[name]))           # a deep copy callers may change
    url = info["weights_url"]
    info["weights_cached"] = str(cached_path(url)) if url and cached_path(url).exists() else None
    return info


def measure_all() -> dict[str, dict]:
    from .models.zoo import MODELS

    return {name: measure(name) for name in MODELS}


if __name__ == "__main__":      # regenerate models/facts.json after a zoo change
    rows = [f"{json.dumps(k)}: {json.dumps(v)}" for k, v in measure_all().items()]
    FACTS_FILE.write_text("{\n" + ",\n".join(rows) + "\n}\n")     # a line a model
