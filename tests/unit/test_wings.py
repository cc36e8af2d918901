"""The two wings: the Lambda layer's package imports nothing of the local wing or its tools.

``gtaudit`` (layers/gtaudit/) is what every Lambda ships; ``gtaudit_local`` (local/) is the embedded
runtime, the CLI, the preview server and the browser workers. A domain module that imported the local
wing, or a tool only the ``[local]`` extra installs, would fail in AWS at import time, so this reads
every module's imports (including the ones inside functions) without running any of them.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from support import ROOT

DOMAIN = ROOT / "layers" / "gtaudit" / "gtaudit"
FUNCTIONS = ROOT / "functions"
# Installed by the [local] or [dev] extras only: never in a Lambda.
LOCAL_ONLY = {"gtaudit_local", "moto", "liquid", "playwright", "rich", "yaml", "scipy", "pytest", "hypothesis"}
# What the layers and the Lambda runtime provide (layers/*/requirements.txt, plus boto3 in the runtime).
LAMBDA_PROVIDED = {
    "gtaudit",
    "aws_lambda_powertools",
    "pydantic",
    "ijson",
    "PIL",
    "numpy",
    "pyvips",
    "boto3",
    "botocore",
}


def imported_roots(path: Path) -> set[str]:
    """The top-level package of every import in a module."""
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def third_party(roots: set[str]) -> set[str]:
    import sys

    return {r for r in roots if r not in sys.stdlib_module_names and r != "__future__"}


MODULES = sorted([*DOMAIN.rglob("*.py"), *FUNCTIONS.glob("*/app.py")])


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_what_lambdas_run_imports_only_what_lambdas_have(path: Path) -> None:
    roots = third_party(imported_roots(path))
    assert not roots & LOCAL_ONLY, f"{path.relative_to(ROOT)} imports the local wing's {sorted(roots & LOCAL_ONLY)}"
    assert roots <= LAMBDA_PROVIDED, f"{path.relative_to(ROOT)} imports {sorted(roots - LAMBDA_PROVIDED)}"


def test_the_layer_holds_the_domain_package_and_its_templates_only() -> None:
    layer = ROOT / "layers" / "gtaudit"
    shipped = {p.relative_to(layer).parts[0] for p in layer.iterdir() if not p.name.endswith(".egg-info")}
    assert shipped == {"gtaudit", "requirements.txt"}
    assets = {p.suffix for p in DOMAIN.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    assert assets <= {".py", ".typed", ".html"}, assets  # no crowd-elements JS or CSS in the layer


def test_every_layer_dependency_is_declared_for_the_layer() -> None:
    declared = set()
    for req in (ROOT / "layers" / "gtaudit" / "requirements.txt", ROOT / "layers" / "pillow" / "requirements.txt"):
        for line in req.read_text(encoding="utf-8").splitlines():
            if line.strip() and not line.startswith("#"):
                declared.add(line.split("[")[0].split(">")[0].split("=")[0].strip().lower())
    assert {"aws-lambda-powertools", "pydantic", "ijson", "pillow", "numpy"} <= declared
