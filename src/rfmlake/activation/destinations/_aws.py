"""Shared plumbing of the AWS destinations: clients made on first use (never at import), errors mapped."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from rfmlake.activation.errors import ActivationError
from rfmlake.activation.model import Change
from rfmlake.activation.retry import classify_client_error

if TYPE_CHECKING:
    import boto3

T = TypeVar("T")


class AwsClientMixin:
    service: str

    def _init_client(self, *, boto3_session: boto3.Session | None, endpoint_url: str | None,
                     client: Any | None) -> None:
        self._boto3_session = boto3_session
        self._endpoint_url = endpoint_url
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            try:
                import boto3
            except ImportError:
                raise ActivationError("AWS destinations need boto3: pip install 'rfmlake[aws]'") from None
            session = self._boto3_session or boto3.Session()
            self._client = session.client(self.service, endpoint_url=self._endpoint_url)
        return self._client

    def _call(self, fn: Callable[..., T], **kwargs: Any) -> T:
        """One API call; throttling/5xx/connection errors -> RetryableError, other errors -> PermanentError."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return fn(**kwargs)
        except (ClientError, BotoCoreError) as exc:
            raise classify_client_error(exc) from exc


def rfm_detail(change: Change) -> dict[str, Any]:
    """The RFM attributes of a change, without any address."""
    attrs = dict(change.member.attributes) if change.member else {}
    attrs.pop("rfm_segment", None)
    return attrs


def dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))
