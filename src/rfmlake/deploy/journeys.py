"""After `cdk deploy`: seed the deployed journeys folder (`s3://<artifacts>/journeys/`, the one folder the
marketing app edits and the pipeline's `journeys` stage runs: the settings' `journeys.dir`) with the
repository's `journeys/`.

Every file goes up once: a conditional put (`If-None-Match: *`) writes only a key the folder does not
hold, so a journey or template already there (saved, started or paused in the app, or seeded by an
earlier deploy) is never overwritten, even by a deploy racing the app. The folder makes no other
distinction between templates and live journeys than the app does: every journey in it is listed,
can be the template of a new one, and runs when its `status:` is active. So the repository's journeys
arrive paused (only their `status:` line changes): a deploy never starts sending to customers; a
marketer starts a journey in the app. Email templates (`templates/*.yaml`) go up as they are."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rfmlake.errors import RfmlakeError

if TYPE_CHECKING:
    import boto3

# The storage stack's output naming the folder (cdk deploy --outputs-file writes it per stack).
JOURNEYS_FOLDER_OUTPUT = "JourneysFolder"
SEEDED_STATUS = "paused"


class JourneySeedError(RfmlakeError):
    """The deployed journeys folder cannot be found or seeded."""


@dataclass
class SeedReport:
    folder: str
    uploaded: list[str] = field(default_factory=list)  # keys put by this deploy
    kept: list[str] = field(default_factory=list)      # keys the folder held already: left as they are

    def render(self) -> str:
        lines = [f"journeys folder {self.folder}: {len(self.uploaded)} file(s) added, "
                 f"{len(self.kept)} kept as they are"]
        lines += [f"  added {key}" + ("" if "/templates/" in f"/{key}" else f" ({SEEDED_STATUS})")
                  for key in self.uploaded]
        return "\n".join(lines)


def journeys_folder(outputs: Mapping[str, Mapping[str, Any]]) -> str:
    """The folder from `cdk deploy --outputs-file`'s JSON ({stack: {output: value}})."""
    found = {str(values[JOURNEYS_FOLDER_OUTPUT]) for values in outputs.values() if JOURNEYS_FOLDER_OUTPUT in values}
    if len(found) != 1:
        raise JourneySeedError(f"cdk deploy reported {len(found)} {JOURNEYS_FOLDER_OUTPUT} outputs (expected one, "
                               f"from the storage stack): {sorted(found)}")
    folder = found.pop()
    if not folder.startswith("s3://"):
        raise JourneySeedError(f"{JOURNEYS_FOLDER_OUTPUT} {folder!r} is not an s3:// folder")
    return folder if folder.endswith("/") else folder + "/"


def seed_files(source: Path) -> dict[str, bytes]:
    """Relative key -> content of what goes up: the folder's journeys (paused) and its email templates,
    after checking they load (an invalid journey fails the seeding, naming the file and the key)."""
    from rfmlake.journeys.spec import TEMPLATES_DIR, load_journeys, with_status

    if not source.is_dir():
        raise JourneySeedError(f"no journeys folder at {source}")
    load_journeys(source)  # JourneyError names the file and the key
    files: dict[str, bytes] = {}
    for path in sorted(source.glob("*.y*ml")):
        files[path.name] = with_status(path.read_text(encoding="utf-8"), SEEDED_STATUS).encode()
    for path in sorted((source / TEMPLATES_DIR).glob("*.y*ml")):
        files[f"{TEMPLATES_DIR}/{path.name}"] = path.read_bytes()
    return files


def seed_journeys(source: Path, folder: str, *, boto3_session: boto3.Session | None = None) -> SeedReport:
    """Put each file of `source` into `folder` (s3://bucket/prefix/) unless the folder holds it already."""
    import boto3
    from botocore.exceptions import ClientError

    bucket, _, prefix = folder.removeprefix("s3://").partition("/")
    prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
    client = (boto3_session or boto3.Session()).client("s3")
    report = SeedReport(f"s3://{bucket}/{prefix}")
    for name, body in seed_files(source).items():
        key = prefix + name
        try:
            client.put_object(Bucket=bucket, Key=key, Body=body, IfNoneMatch="*",
                              ContentType="application/yaml")
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            # 412: the key exists; 409: another write of it is in flight (the app saving it right now)
            if code in ("PreconditionFailed", "ConditionalRequestConflict"):
                report.kept.append(key)
                continue
            raise JourneySeedError(f"cannot put s3://{bucket}/{key}: {code}: "
                                   f"{exc.response.get('Error', {}).get('Message', '')}") from None
        report.uploaded.append(key)
    return report
