"""Build what the stacks upload: the rfmlake wheel (Glue --additional-python-modules, CodeBuild,
SageMaker) and the Lambda layer folder (the wheel's contents under python/)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

from rfmlake.errors import RfmlakeError

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class BuildArtifacts:
    wheel: Path  # dist/rfmlake-<version>-py3-none-any.whl (the name pip needs)
    layer_dir: Path  # folder holding python/rfmlake/...: a Lambda layer


def build_artifacts(out_dir: Path, repo_root: Path = REPO_ROOT) -> BuildArtifacts:
    """`pip wheel --no-deps` the package into out_dir/wheel and unpack it as a layer into out_dir/layer."""
    wheel_dir = out_dir / "wheel"
    shutil.rmtree(wheel_dir, ignore_errors=True)
    wheel_dir.mkdir(parents=True)
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheel_dir), str(repo_root)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    wheels = sorted(wheel_dir.glob("rfmlake-*.whl"))
    if done.returncode != 0 or len(wheels) != 1:
        raise RfmlakeError(f"building the rfmlake wheel failed ({' '.join(command)}):\n{done.stderr.strip()[-2000:]}")
    layer_dir = out_dir / "layer"
    shutil.rmtree(layer_dir, ignore_errors=True)
    # A pure-Python wheel is a zip of the installed tree: unpacking it under python/ is the install.
    with zipfile.ZipFile(wheels[0]) as archive:
        archive.extractall(layer_dir / "python")
    return BuildArtifacts(wheel=wheels[0], layer_dir=layer_dir)
