"""infra/rfmlake_infra/functions.py: the image CMD of a handler and the refusal of a missing one
(the synthesized functions are checked in tests/functional/infra/test_infra_synth.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("aws_cdk")

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "infra"))

from rfmlake_infra.functions import DOCKERFILE, function_code, handler_cmd  # noqa: E402


def test_every_handler_gets_a_cmd_inside_the_image_build_context() -> None:
    assert (REPO / DOCKERFILE).is_file()
    for handler in sorted((REPO / "lambdas").glob("*/handler.py")):
        name = handler.parent.name
        module, function = handler_cmd(name).rsplit(".", 1)
        assert (REPO / "lambdas" / (module.replace(".", "/") + ".py")) == handler
        assert f"def {function}(" in handler.read_text()
        assert function_code(REPO, name) is not None


def test_a_missing_handler_is_refused_at_synth(tmp_path: Path) -> None:
    (tmp_path / "lambdas" / "other").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="lambdas/other/handler.py"):
        function_code(tmp_path, "other")
