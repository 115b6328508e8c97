"""Amazon Pinpoint, retired: AWS ended Pinpoint's engagement features (endpoints, segments, campaigns,
journeys) for every account on 2026-10-30, so this destination works for no account any more. Settings
refuse it, naming the successors (SES, `sms` = End User Messaging SMS, `customer_profiles`), unless the
retirement is acknowledged (docs/activation.md). What it did: one endpoint per customer and channel with
RFM attributes and metrics via UpdateEndpointsBatch (100 per call), and one dynamic segment per rfmlake
segment filtering on the `rfm_segment` endpoint attribute.

UpdateEndpointsBatch accepts or rejects a whole call; a rejected call (a bad endpoint) is bisected
so that only the bad endpoints are dead-lettered. Leaving every segment opts the endpoint out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rfmlake.activation.destinations._aws import AwsClientMixin
from rfmlake.activation.destinations.base import Destination, SyncSession
from rfmlake.activation.errors import PermanentError
from rfmlake.activation.model import Change, Channel, RecordFailure, segment_slug

if TYPE_CHECKING:
    import boto3

UPDATE_ENDPOINTS_MAX_ITEMS = 100
_METRICS = ("r_score", "f_score", "m_score", "frequency", "monetary")
_CHANNEL_TYPES = {"email": "EMAIL", "phone": "SMS"}
NO_SEGMENT = "none"


class PinpointDestination(AwsClientMixin, Destination):
    service = "pinpoint"

    def __init__(self, name: str = "pinpoint", *, application_id: str, channel: Channel = "email",
                 batch_size: int = UPDATE_ENDPOINTS_MAX_ITEMS, boto3_session: boto3.Session | None = None,
                 endpoint_url: str | None = None, client: Any | None = None) -> None:
        if channel not in _CHANNEL_TYPES:
            raise ValueError(f"Pinpoint channel must be one of {sorted(_CHANNEL_TYPES)}, got {channel!r}")
        if not 1 <= batch_size <= UPDATE_ENDPOINTS_MAX_ITEMS:
            raise ValueError(f"Pinpoint batch_size must be 1..{UPDATE_ENDPOINTS_MAX_ITEMS}, got {batch_size}")
        self.name = name
        self.channel = channel
        self.batch_size = batch_size
        self.application_id = application_id
        self._init_client(boto3_session=boto3_session, endpoint_url=endpoint_url, client=client)

    # -- segments -------------------------------------------------------------------------------
    def segment_request(self, segment: str) -> dict[str, Any]:
        return {"Name": f"rfmlake-{segment_slug(segment)}", "Dimensions": {"Attributes": {
            "rfm_segment": {"AttributeType": "INCLUSIVE", "Values": [segment]}}}}

    def open(self, session: SyncSession) -> None:
        existing: dict[str, str] = {}
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"ApplicationId": self.application_id, "PageSize": "100"}
            if token:
                kwargs["Token"] = token
            page = self._call(self.client.get_segments, **kwargs)["SegmentsResponse"]
            existing.update({s["Name"]: s["Id"] for s in page.get("Item", []) if s.get("Name")})
            token = page.get("NextToken")
            if not token:
                break
        for segment in session.segments:
            request = self.segment_request(segment)
            if request["Name"] in existing:
                self._call(self.client.update_segment, ApplicationId=self.application_id,
                           SegmentId=existing[request["Name"]], WriteSegmentRequest=request)
            else:
                self._call(self.client.create_segment, ApplicationId=self.application_id,
                           WriteSegmentRequest=request)

    # -- endpoints ------------------------------------------------------------------------------
    def endpoint_id(self, customer_id: str) -> str:
        return f"rfmlake-{self.channel}-{customer_id}"

    def endpoint(self, change: Change) -> dict[str, Any]:
        item: dict[str, Any] = {"Id": self.endpoint_id(change.customer_id), "ChannelType": _CHANNEL_TYPES[self.channel],
                                "User": {"UserId": change.customer_id}}
        address = change.email if self.channel == "email" else change.phone
        if address:
            item["Address"] = address
        if change.kind == "exited":
            item.update(OptOut="ALL", Attributes={"rfm_segment": [NO_SEGMENT]})
            return item
        attrs = change.member.attributes if change.member else {}
        item["OptOut"] = "NONE"
        item["Attributes"] = {"rfm_segment": [change.segment],
                              **{k: [str(attrs[k])] for k in ("cluster_label", "rfm_cell", "last_order_date")
                                 if attrs.get(k) is not None}}
        item["Metrics"] = {k: float(attrs[k]) for k in _METRICS if attrs.get(k) is not None}
        return item

    def send(self, batch: Sequence[Change]) -> list[RecordFailure]:
        if len(batch) > UPDATE_ENDPOINTS_MAX_ITEMS:
            raise ValueError(f"UpdateEndpointsBatch takes at most {UPDATE_ENDPOINTS_MAX_ITEMS} endpoints")
        return self._send(list(batch))

    def _send(self, batch: list[Change]) -> list[RecordFailure]:
        try:
            self._call(self.client.update_endpoints_batch, ApplicationId=self.application_id,
                       EndpointBatchRequest={"Item": [self.endpoint(c) for c in batch]})
            return []
        except PermanentError as exc:
            if len(batch) == 1:
                return [RecordFailure(batch[0].customer_id, exc.reason)]
        half = len(batch) // 2  # isolate the bad endpoints; RetryableError propagates to the engine
        return self._send(batch[:half]) + self._send(batch[half:])
