"""Build what the stacks upload: the rfmlake wheel (Glue --additional-python-modules, CodeBuild,
SageMaker). The Lambdas run a container image that installs the package itself (lambdas/Dockerfile,
rfmlake_infra.functions), built by `cdk deploy`."""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from rfmlake.errors import RfmlakeError

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class BuildArtifacts:
    wheel: Path  # dist/rfmlake-<version>-py3-none-any.whl (the name pip needs)


def build_artifacts(out_dir: Path, repo_root: Path = REPO_ROOT) -> BuildArtifacts:
    """`pip wheel --no-deps` the package into out_dir/wheel."""
    wheel_dir = out_dir / "wheel"
    shutil.rmtree(wheel_dir, ignore_errors=True)
    wheel_dir.mkdir(parents=True)
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheel_dir), str(repo_root)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    wheels = sorted(wheel_dir.glob("rfmlake-*.whl"))
    if done.returncode != 0 or len(wheels) != 1:
        raise RfmlakeError(f"building the rfmlake wheel failed ({' '.join(command)}):\n{done.stderr.strip()[-2000:]}")
    return BuildArtifacts(wheel=wheels[0])
