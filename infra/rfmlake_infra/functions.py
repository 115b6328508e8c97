"""The code of every Lambda and of the SageMaker processing jobs: ONE container image
(lambdas/Dockerfile, built from the repository root) holding the rfmlake package with the extras the
handlers import and each lambdas/<name>/handler.py. The functions differ only in the image CMD
(`<name>.handler.handler`), the processing jobs set their own entrypoint; all share one image asset
(the same hash in every stack): `cdk synth` records it, `cdk deploy` builds and pushes it once.

The managed SageMaker scikit-learn images cannot serve: their Python (3.10 in 1.4-2, 3.12 in
1.4-2-py312) is not the 3.11 the package and every other runtime use.

Container images rather than zip + layers: the handlers' dependencies (pyarrow, duckdb, pandas, numpy,
scikit-learn, great-expectations, dbt, fastapi, opensearch-py, boto3, ...) exceed the 250 MB unzipped
limit of a zip function with its layers; an image may hold 10 GB."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

DOCKERFILE = "lambdas/Dockerfile"  # relative to the build context, the repository root (see .dockerignore)
# Explicit on both sides: the image is built for the architecture the functions run on, also on arm64 hosts.
ARCHITECTURE = lambda_.Architecture.X86_64
PLATFORM = ecr_assets.Platform.LINUX_AMD64


def handler_cmd(name: str) -> str:
    """The image CMD selecting lambdas/<name>/handler.py's `handler` (lambdas/ is the task root)."""
    return f"{name}.handler.handler"


def image_asset(scope: Construct, construct_id: str, repo_root: Path) -> ecr_assets.DockerImageAsset:
    """The same image as an asset of `scope`'s stack, with its repository (for the processing jobs)."""
    return ecr_assets.DockerImageAsset(scope, construct_id, directory=str(repo_root), file=DOCKERFILE,
                                       platform=PLATFORM)


def function_code(repo_root: Path, name: str) -> lambda_.DockerImageCode:
    """The shared image, started with lambdas/<name>'s handler."""
    if not (repo_root / "lambdas" / name / "handler.py").is_file():
        raise FileNotFoundError(f"lambdas/{name}/handler.py does not exist")
    return lambda_.DockerImageCode.from_image_asset(
        str(repo_root), file=DOCKERFILE, cmd=[handler_cmd(name)], platform=PLATFORM
    )
