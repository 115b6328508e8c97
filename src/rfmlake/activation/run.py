"""One entry for every runtime (CLI, pipeline stage, Lambda): sync the configured destinations."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from rfmlake.activation.config import destination_from_env, destination_names_from_env
from rfmlake.activation.engine import sync
from rfmlake.activation.model import SyncReport
from rfmlake.activation.retry import RetryPolicy
from rfmlake.lake import Lake

if TYPE_CHECKING:
    import boto3


def activate(lake: Lake, destinations: Sequence[str] | None = None, *, full: bool = False,
             env: Mapping[str, str] | None = None, boto3_session: boto3.Session | None = None,
             policy: RetryPolicy | None = None, audience: str | None = None) -> list[SyncReport]:
    """Sync each destination (default: those named by RFMLAKE_ACTIVATION_DESTINATIONS, else `file`);
    with `audience`, only the members of that saved audience (gold.audiences)."""
    names = list(destinations) if destinations else destination_names_from_env(env)
    return [sync(lake, destination_from_env(name, env, boto3_session), full=full, policy=policy, audience=audience)
            for name in names]
