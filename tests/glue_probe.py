"""Run one glue_jobs/*.py entry script the way its Glue job does (the job's arguments), under local pyspark,
with some top-level modules made unimportable, and write as JSON what it imported and how it ended
(tests/functional/infra/test_glue_bundle.py blocks everything the Glue bundle and Glue 5.0 do not provide).

    python -I tests/glue_probe.py <script> <empty work folder> <blocked.json> -- <job arguments...>

The package comes from this checkout's src/ (not whatever the venv's editable install points at). Only
the standard library is imported before the blocker is in place, so nothing the probe loads is counted.
"""

from __future__ import annotations

import json
import os
import runpy
import sys
import traceback
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


class Blocker:
    """A meta path finder that refuses the blocked top-level modules, like a missing distribution."""

    def __init__(self, names: set[str]) -> None:
        self.names = names
        self.refused: set[str] = set()

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> None:
        if fullname.split(".")[0] in self.names:
            self.refused.add(fullname.split(".")[0])
            raise ModuleNotFoundError(f"No module named {fullname!r} (blocked: not on Glue)", name=fullname)
        return None


def main(script: Path, work: Path, blocked: set[str], arguments: list[str]) -> dict[str, Any]:
    os.chdir(work)  # the job's working directory: --extra-files (settings.yaml) land here on Glue
    sys.path.insert(0, str(REPO / "src"))
    already = set(sys.modules)
    blocker = Blocker(blocked)
    sys.meta_path.insert(0, blocker)
    outcome, import_error = "", None
    try:
        namespace = runpy.run_path(str(script), run_name="glue_job")
        code = namespace["main"]([str(script), *arguments])
        outcome = f"exit {code}"
    except ImportError as exc:
        import_error = repr(exc)
        outcome = "ImportError"
    except BaseException as exc:  # noqa: BLE001 - reported, compared between the two runs
        outcome = f"{type(exc).__name__}: {str(exc)[:300]}"
        traceback.print_exc()
    top_level = {m.split(".")[0] for m in set(sys.modules) - already}
    modules = {m: getattr(sys.modules.get(m), "__file__", None) for m in sorted(top_level)}
    return {"script": script.name, "outcome": outcome, "import_error": import_error, "modules": modules,
            "refused": sorted(blocker.refused)}


if __name__ == "__main__":
    separator = sys.argv.index("--")
    script_path, folder, block_file = Path(sys.argv[1]), Path(sys.argv[2]).resolve(), Path(sys.argv[3])
    report = main(script_path, folder, set(json.loads(block_file.read_text())), sys.argv[separator + 1:])
    (folder / "probe.json").write_text(json.dumps(report, indent=1))
