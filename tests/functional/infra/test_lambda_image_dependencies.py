"""Every lambdas/*/handler.py runs with what the Lambda image installs (lambdas/Dockerfile: the rfmlake
package with the extras of its RFMLAKE_EXTRAS argument), without Docker.

tests/lambda_probe.py loads each handler in a fresh interpreter and calls it with representative events
(offline: empty lake, closed AWS endpoints), recording the modules it imported. The image installs the
requirement closure of rfmlake[<extras>] (from the installed distributions' metadata). Each handler runs
twice: once in the venv as it is, and once with every distribution outside that closure blocked, as
in the image. The blocked run must raise no ImportError and behave the same; the distributions it
loads must all be in the closure. What the venv loads beyond that is an optional import (try/except).

Limits: imports that happen only on data (a non-empty lake, a reachable OpenSearch) are not reached;
versions may differ from the image's (Amazon Linux 2 wheels: pyarrow 20, numpy 2.2 ...).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from packaging.specifiers import SpecifierSet

from distributions import blocked_modules, missing, requirement_closure, third_party

REPO = Path(__file__).resolve().parents[3]
DOCKERFILE = REPO / "lambdas" / "Dockerfile"
PROBE = REPO / "tests" / "lambda_probe.py"
HANDLERS = sorted(p.parent.name for p in (REPO / "lambdas").glob("*/handler.py"))


# -- what the image installs ------------------------------------------------------------------------
def image_extras(dockerfile: str) -> set[str]:
    """The extras lambdas/Dockerfile installs the package with (its RFMLAKE_EXTRAS argument)."""
    (extras,) = re.findall(r"^ARG RFMLAKE_EXTRAS=(\S+)$", dockerfile, re.MULTILINE)
    assert re.search(r'pip install [^\n]*"/tmp/\w+\[\$\{RFMLAKE_EXTRAS\}\]"', dockerfile), (
        "lambdas/Dockerfile no longer installs the package with [${RFMLAKE_EXTRAS}]: update this test")
    return set(extras.split(","))


# -- the probes -------------------------------------------------------------------------------------
def run_probes(work: Path, blocked: set[str] | None) -> dict[str, dict[str, Any]]:
    """tests/lambda_probe.py for every handler, in parallel; {handler: report}."""
    block_file = work / "blocked.json"
    block_file.write_text(json.dumps(sorted(blocked or ())))
    running = {}
    for name in HANDLERS:
        (work / name).mkdir()
        command = [sys.executable, "-I", str(PROBE), name, str(work / name), str(block_file)]
        running[name] = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    reports = {}
    for name, process in running.items():
        output, _ = process.communicate(timeout=300)
        assert process.returncode == 0, f"lambda_probe {name} failed:\n{output[-3000:]}"
        reports[name] = json.loads((work / name / "probe.json").read_text())
    return reports


@pytest.fixture(scope="module")
def extras() -> set[str]:
    return image_extras(DOCKERFILE.read_text())


@pytest.fixture(scope="module")
def closure(extras: set[str]) -> set[str]:
    return requirement_closure("rfmlake", extras)


@pytest.fixture(scope="module")
def venv_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    return run_probes(tmp_path_factory.mktemp("venv"), None)


@pytest.fixture(scope="module")
def image_runs(tmp_path_factory: pytest.TempPathFactory, closure: set[str]) -> dict[str, dict[str, Any]]:
    return run_probes(tmp_path_factory.mktemp("image"), blocked_modules(closure))


# -- tests ------------------------------------------------------------------------------------------
def test_the_image_matches_the_package() -> None:
    dockerfile = DOCKERFILE.read_text()
    (python,) = re.findall(r"^FROM public\.ecr\.aws/lambda/python:(\d+\.\d+)$", dockerfile, re.MULTILINE)
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert f"{python}.0" in SpecifierSet(project["requires-python"])
    # The closure's markers are evaluated for this interpreter: it must be the image's Python.
    assert f"{sys.version_info.major}.{sys.version_info.minor}" == python
    assert image_extras(dockerfile) <= set(project["optional-dependencies"])
    # CMD "<name>.handler.handler" needs lambdas/<name>/ directly under the task root.
    assert re.search(r"^COPY lambdas/ \$\{LAMBDA_TASK_ROOT\}/$", dockerfile, re.MULTILINE)
    assert HANDLERS and all(name.isidentifier() for name in HANDLERS)


@pytest.mark.parametrize("name", HANDLERS)
def test_handler_runs_with_only_what_the_image_installs(
    name: str, venv_runs: dict[str, dict[str, Any]], image_runs: dict[str, dict[str, Any]], closure: set[str]
) -> None:
    venv, image = venv_runs[name], image_runs[name]
    assert venv["import_errors"] == [], "the handler cannot import in the dev venv"
    assert venv["outcomes"], "the probe called the handler with no event"
    assert image["import_errors"] == [], (
        f"lambdas/{name} imports a distribution lambdas/Dockerfile does not install "
        "(add it to an extra in RFMLAKE_EXTRAS, or the extra to RFMLAKE_EXTRAS)")
    # An ImportError a caller catches and turns into another error (or an HTTP 500) shows up here.
    assert image["outcomes"] == venv["outcomes"]
    owners, unknown = third_party(image["modules"])
    assert unknown == []
    assert missing(owners, closure) == {}


def test_every_extra_of_the_image_is_needed(image_runs: dict[str, dict[str, Any]], extras: set[str]) -> None:
    """Without any one of the extras some handler imports a distribution the image lacks: the check above
    can fail, and the image installs no extra the handlers do not use."""
    needed = {name: third_party(report["modules"])[0] for name, report in image_runs.items()}
    for extra in sorted(extras):
        smaller = requirement_closure("rfmlake", extras - {extra})
        lacking = {name: gaps for name, owners in needed.items() if (gaps := missing(owners, smaller))}
        assert lacking, f"no handler needs the {extra!r} extra: drop it from RFMLAKE_EXTRAS"
