"""Build what the stacks upload: the rfmlake wheel (CodeBuild, and the Glue jobs) and the Glue bundle.
The Lambdas and SageMaker jobs run a container image that installs the package itself
(lambdas/Dockerfile, rfmlake_infra.functions), built by `cdk deploy`.

The Glue bundle: the Spark stages need only a few packages besides what Glue 5.0 ships, declared as the
package's `glue` extra (pyproject.toml). `rfmlake deploy` downloads that extra's requirement closure as
wheels for Glue 5.0's platform (CPython 3.11, x86_64, glibc 2.34), less the distributions Glue provides;
the jobs install exactly these wheels and the rfmlake wheel with `pip --no-deps`, so a job start never
resolves anything against PyPI (and never installs dbt, great-expectations, DuckDB or scikit-learn)."""

from __future__ import annotations

import fcntl
import hashlib
import shutil
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename

from rfmlake.errors import RfmlakeError

REPO_ROOT = Path(__file__).resolve().parents[2]


GLUE_EXTRA = "glue"
# Distributions AWS Glue 5.0 ships for Spark jobs that the Spark stages may import without bundling them
# (AWS Glue developer guide, "Python modules already provided in AWS Glue", the 5.0 column). Glue's
# versions win: pyarrow is declared in the `glue` extra for local runs and left out of the bundle.
GLUE_PROVIDED = frozenset({
    "pyspark", "pyarrow", "numpy", "pandas", "boto3", "botocore", "s3transfer", "jmespath", "urllib3",
    "python-dateutil", "six", "pytz", "tzdata",
})
# Glue 5.0: Amazon Linux 2023 (glibc 2.34), CPython 3.11, x86_64 workers.
GLUE_PYTHON = "3.11"
GLUE_PLATFORMS = ("manylinux_2_34_x86_64", "manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")


@dataclass(frozen=True)
class BuildArtifacts:
    wheel: Path  # dist/rfmlake-<version>-py3-none-any.whl (the name pip needs)
    glue_bundle: tuple[Path, ...] = ()  # the wheels of the `glue` extra's closure, less GLUE_PROVIDED


def glue_requirements(repo_root: Path = REPO_ROOT) -> list[Requirement]:
    """The `glue` extra of pyproject.toml, less what Glue provides."""
    project = tomllib.loads((repo_root / "pyproject.toml").read_text())["project"]
    extra = project.get("optional-dependencies", {}).get(GLUE_EXTRA)
    if extra is None:
        raise RfmlakeError(f"pyproject.toml declares no `{GLUE_EXTRA}` extra (what the Spark stages import)")
    return [r for r in map(Requirement, extra) if canonicalize_name(r.name) not in GLUE_PROVIDED]


def build_glue_bundle(out_dir: Path, repo_root: Path = REPO_ROOT) -> tuple[Path, ...]:
    """Download the wheels of the `glue` extra's closure for Glue 5.0's platform into out_dir."""
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)
    requirements = [str(r) for r in glue_requirements(repo_root)]
    if not requirements:
        return ()
    platforms = [arg for platform in GLUE_PLATFORMS for arg in ("--platform", platform)]
    command = [sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:", *platforms,
               "--python-version", GLUE_PYTHON, "--implementation", "cp", "-d", str(out_dir), *requirements]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RfmlakeError(f"downloading the Glue bundle failed ({' '.join(command)}):\n{done.stderr.strip()[-2000:]}")
    wheels = []
    for wheel in sorted(out_dir.glob("*.whl")):
        if canonicalize_name(parse_wheel_filename(wheel.name)[0]) in GLUE_PROVIDED:
            wheel.unlink()  # pulled in by a requirement, but Glue has its own
        else:
            wheels.append(wheel)
    return tuple(wheels)


def build_artifacts(out_dir: Path, repo_root: Path = REPO_ROOT) -> BuildArtifacts:
    """`pip wheel --no-deps` the package into out_dir/wheel; the Glue bundle into out_dir/glue."""
    wheel_dir = out_dir / "wheel"
    shutil.rmtree(wheel_dir, ignore_errors=True)
    wheel_dir.mkdir(parents=True)
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheel_dir), str(repo_root)]
    # setuptools builds in the checkout's build/ folder: two builds of one checkout at once (two
    # deploys, parallel test workers) would trip over each other's files, so they take turns.
    lock_name = f"rfmlake-wheel-{hashlib.sha256(str(Path(repo_root).resolve()).encode()).hexdigest()[:16]}.lock"
    with open(Path(tempfile.gettempdir()) / lock_name, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = subprocess.run(command, capture_output=True, text=True, check=False)
    wheels = sorted(wheel_dir.glob("rfmlake-*.whl"))
    if done.returncode != 0 or len(wheels) != 1:
        raise RfmlakeError(f"building the rfmlake wheel failed ({' '.join(command)}):\n{done.stderr.strip()[-2000:]}")
    return BuildArtifacts(wheel=wheels[0], glue_bundle=build_glue_bundle(out_dir / "glue", repo_root))
