"""Imports run down the pipeline only: every module under facegen/ is parsed, imports inside functions and
under TYPE_CHECKING included, and each import of a higher layer (or of a peer) is named with its module."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "facegen"
LAYERS: tuple[tuple[str, ...], ...] = (
    ("io",),
    ("data",),
    ("models",),
    ("training",),
    ("viz",),
    ("evaluation",),
    ("use",),
    ("service", "client"),
    ("cli",),
)
"""The pipeline, lowest first: a module may import its own top-level part and any part of a lower row. The
parts of one row are peers and import neither each other nor anything above. `facegen` itself (its version)
sits below every row. viz draws for evaluation, use and the CLI, so it sits just below evaluation."""
DATA_ONLY = ("assets",)
"""Folders of files read by path (meshes, licence, the web app): no code, so nothing imports them."""
RANK = {part: rank for rank, row in enumerate(LAYERS) for part in row}


def module_name(path: Path) -> str:
    """`facegen.data.groups` for facegen/data/groups.py, `facegen.data` for facegen/data/__init__.py."""
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(node: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> list[str]:
    """The facegen modules an import statement names (relative imports resolved; `from facegen import x`
    names facegen.x when x is a part of the package)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:
        base = module.split(".") if is_package else module.split(".")[:-1]
        base = base[: len(base) - node.level + 1]
        source = ".".join([*base, node.module] if node.module else base)
    else:
        source = node.module or ""
    if source == "facegen":
        return [f"facegen.{a.name}" if a.name in RANK or a.name in DATA_ONLY else source for a in node.names]
    return [source]


def part_of(module: str) -> str | None:
    """The top-level part of a facegen module (`data` for facegen.data.groups); None for facegen itself."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def upward_imports(module: str, source: str, *, is_package: bool = False) -> list[str]:
    """'MODULE imports TARGET (line N): WHY' for every import in SOURCE that does not go down the pipeline."""
    here = part_of(module)
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Import | ast.ImportFrom):
            continue
        for target in imported(node, module, is_package):
            there = part_of(target) if target.split(".")[0] == "facegen" else None
            if there is None or there == here:
                continue
            if there not in RANK:
                why = "a data-only folder holds no code" if there in DATA_ONLY else f"facegen.{there} has no layer"
            elif here is None or RANK[there] > RANK[here]:
                why = f"{there} lies above {here or 'facegen itself'}"
            elif RANK[there] == RANK[here]:
                why = f"{there} and {here} are peers"
            else:
                continue
            found.append(f"{module} imports {target} (line {node.lineno}): {why}")
    return found


def package_modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_every_part_of_the_package_has_a_layer() -> None:
    parts = {part_of(module_name(p)) for p in package_modules()} - {None}
    unplaced = sorted(parts - set(RANK))
    assert not unplaced, f"place these parts of facegen in LAYERS: {', '.join(unplaced)}"


def test_data_only_folders_hold_no_code() -> None:
    code = [str(p) for name in DATA_ONLY for p in (PACKAGE / name).rglob("*.py")]
    assert not code, f"data-only folders hold Python modules: {', '.join(code)}"


def test_imports_run_down_the_pipeline_only() -> None:
    found = []
    for path in package_modules():
        found += upward_imports(module_name(path), path.read_text(), is_package=path.name == "__init__.py")
    assert not found, "imports that go up the pipeline:\n" + "\n".join(found)


@pytest.mark.parametrize(
    ("module", "source", "expected"),
    [
        ("facegen.models.gan.cgan", "def f():\n    from facegen.training.loop import fit_model\n",
         "facegen.models.gan.cgan imports facegen.training.loop (line 2): training lies above models"),
        ("facegen.data.dataset.ingest", "from facegen import viz\n",
         "facegen.data.dataset.ingest imports facegen.viz (line 1): viz lies above data"),
        ("facegen.training.loop", "if TYPE_CHECKING:\n    import facegen.evaluation.metrics\n",
         "facegen.training.loop imports facegen.evaluation.metrics (line 2): evaluation lies above training"),
        ("facegen.service.jobs", "from ..client import Client\n",
         "facegen.service.jobs imports facegen.client (line 1): client and service are peers"),
    ],
)  # fmt: skip
def test_the_check_names_an_upward_import_wherever_it_hides(module: str, source: str, expected: str) -> None:
    assert upward_imports(module, source) == [expected]


def test_the_check_lets_imports_down_the_line_and_within_a_part_pass() -> None:
    source = "from facegen import __version__\nfrom facegen.data.groups import GROUPINGS\nfrom . import config\n"
    assert upward_imports("facegen.training.loop", source) == []
