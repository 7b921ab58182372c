"""The layers of ARCHITECTURE.md, held by reading every `import` in src/hrpose (those inside
functions too: a deferred import is still a dependency)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "hrpose"

# Lowest first. A module may import its own layer and the ones below, never one above.
LAYERS = [
    {"errors", "version", "io", "paths", "fields", "runtimes", "hardware", "hub",
     "skeletons"},
    {"models", "codecs", "data", "metrics"},
    {"config"},
    {"inference"},
    {"export"},
    {"engine"},
    {"cli", "info", "serve", "client", "batch", "__init__", "__main__"},
]


def _module(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module(p): p for p in SRC.rglob("*.py")}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """hrpose modules that `name` imports anywhere, outside `if TYPE_CHECKING:` blocks."""
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    skip = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
            and "TYPE_CHECKING" in ast.unparse(node.test) for n in ast.walk(node)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            targets = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        for target in targets:
            if target in known:
                found.add(target)
    found.discard(name)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, set(modules)) for name, path in modules.items()}


def _layer(module: str) -> int:
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else "__init__"
    for i, layer in enumerate(LAYERS):
        if top in layer:
            return i
    raise AssertionError(f"{module}: in no layer of tests/test_architecture.py")


def test_no_import_points_up() -> None:
    upward = sorted(f"{a} -> {b}" for a, targets in _graph().items() for b in targets
                    if b != "hrpose" and _layer(b) > _layer(a))
    assert not upward, "imports of a higher layer:\n" + "\n".join(upward)


def test_no_import_cycles() -> None:
    graph = _graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(v: str) -> None:          # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for v in graph:
        if v not in index:
            visit(v)
    assert not cycles, "import cycles: " + "; ".join(" <-> ".join(c) for c in cycles)


def test_only_the_package_facade_imports_the_package() -> None:
    """`from hrpose import __version__` inside the package runs the facade; modules take what
    they need from the module that defines it."""
    offenders = sorted(a for a, targets in _graph().items()
                       if "hrpose" in targets and a not in ("hrpose", "hrpose.__main__"))
    assert not offenders, offenders


def test_help_does_not_import_torch() -> None:
    code = ("import sys, contextlib, io\nfrom hrpose.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
            "    main(['--help'])\nprint('torch' in sys.modules, 'numpy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False", "False"], out


def test_command_choices_are_their_owners() -> None:
    """The CLI keeps literal choice lists (building the parser imports no numpy); each must be
    its owner's."""
    from hrpose.cli import build_parser
    from hrpose.codecs.heatmap import METHODS
    from hrpose.export.bench import BENCH_BACKENDS, BENCH_PRECISIONS
    from hrpose.export.exporter import FORMATS
    from hrpose.hardware import PRECISION_CHOICES
    from hrpose.inference.options import BACKENDS, DECODE_METHODS
    from hrpose.metrics.coco import NMS_METHODS

    commands = build_parser()._subparsers._group_actions[0].choices

    def choices(command: str, option: str) -> tuple:
        action = next(a for a in commands[command]._actions if option in a.option_strings)
        return tuple(action.choices)

    for command in ("eval", "infer"):
        assert choices(command, "--decode") == METHODS
        assert choices(command, "--precision") == PRECISION_CHOICES
        assert choices(command, "--backend") == BACKENDS
    assert DECODE_METHODS == METHODS
    assert choices("eval", "--nms") == NMS_METHODS
    from hrpose.metrics.protocols import PROTOCOL_CHOICES

    assert choices("eval", "--protocol") == PROTOCOL_CHOICES
    from hrpose.inference.person import RESULT_LAYOUTS

    assert choices("infer", "--results-layout") == RESULT_LAYOUTS
    assert choices("export", "--format") == tuple(FORMATS)
    assert choices("bench", "--backend") == BENCH_BACKENDS
    assert choices("bench", "--precision") == BENCH_PRECISIONS
    from hrpose.cli.data import FORMATS as LABEL_FORMATS
    from hrpose.data.importers import IMPORTERS

    data = commands["data"]._subparsers._group_actions[0].choices
    convert = next(a for a in data["convert"]._actions if a.dest == "format")
    assert tuple(convert.choices) == LABEL_FORMATS == tuple(IMPORTERS)
    from hrpose.cli.data import DATASETS as DATASET_NAMES
    from hrpose.data.download import DATASETS

    download = next(a for a in data["download"]._actions if a.dest == "name")
    assert tuple(download.choices) == DATASET_NAMES == tuple(DATASETS)


def test_bgr_input_runs_every_output() -> None:
    """A bottom-up model with --bgr (a wrapper of a runner) is still a whole Runner."""
    import numpy as np

    from hrpose.inference.backends import BGRInput

    class TwoOutputs:
        input_hw = (64, 64)
        backend, precision = "test", "fp32"          # what a Runner states

        def run_all(self, batch: np.ndarray) -> list[np.ndarray]:
            return [batch[:, :1], batch[:, 2:]]

        def __call__(self, batch: np.ndarray) -> np.ndarray:
            return self.run_all(batch)[0]

    x = np.arange(2 * 3 * 4 * 4, dtype=np.float32).reshape(2, 3, 4, 4)
    first, last = BGRInput(TwoOutputs()).run_all(x)
    assert np.array_equal(first, x[:, 2:3]) and np.array_equal(last, x[:, :1])
    assert np.array_equal(BGRInput(TwoOutputs())(x), x[:, 2:3])


def test_no_function_is_over_80_lines() -> None:
    long = []
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > 80:
                    long.append(f"{_module(path)}.{node.name}: {lines} lines")
    assert not long, long
