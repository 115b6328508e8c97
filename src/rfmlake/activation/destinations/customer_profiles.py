"""Amazon Connect Customer Profiles: a custom object type keyed on customer_id (a PROFILE + UNIQUE
key, so the same customer always lands on the same profile) maps the RFM attributes onto the
profile; memberships go in with BatchPutProfileObject (10 objects per call, failures per item)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rfmlake.activation.destinations._aws import AwsClientMixin, dumps
from rfmlake.activation.destinations.base import Destination, SyncSession
from rfmlake.activation.errors import PermanentError, RetryableError
from rfmlake.activation.model import MEMBER_ATTRIBUTES, Change, RecordFailure
from rfmlake.activation.retry import is_retryable_code

if TYPE_CHECKING:
    import boto3

BATCH_PUT_MAX_ITEMS = 10
OBJECT_TYPE = "RfmlakeSegmentMembership"
NO_SEGMENT = "none"


def object_type_fields() -> dict[str, dict[str, str]]:
    fields = {
        "customer_id": {"Source": "_source.customer_id", "Target": "_profile.AccountNumber", "ContentType": "STRING"},
        "email": {"Source": "_source.email", "Target": "_profile.EmailAddress", "ContentType": "EMAIL_ADDRESS"},
        "phone": {"Source": "_source.phone", "Target": "_profile.PhoneNumber", "ContentType": "PHONE_NUMBER"},
        "segment_status": {"Source": "_source.segment_status", "Target": "_profile.Attributes.rfm_segment_status",
                           "ContentType": "STRING"},
    }
    for name in MEMBER_ATTRIBUTES:
        fields[name] = {"Source": f"_source.{name}", "Target": f"_profile.Attributes.{name}", "ContentType": "STRING"}
    return fields


class CustomerProfilesDestination(AwsClientMixin, Destination):
    service = "customer-profiles"

    def __init__(self, name: str = "customer_profiles", *, domain_name: str, object_type: str = OBJECT_TYPE,
                 batch_size: int = 50, boto3_session: boto3.Session | None = None,
                 endpoint_url: str | None = None, client: Any | None = None) -> None:
        self.name = name
        self.channel = "any"
        self.batch_size = batch_size
        self.domain_name = domain_name
        self.object_type = object_type
        self._init_client(boto3_session=boto3_session, endpoint_url=endpoint_url, client=client)

    def open(self, session: SyncSession) -> None:
        self._call(self.client.put_profile_object_type, DomainName=self.domain_name, ObjectTypeName=self.object_type,
                   Description="rfmlake RFM segment membership", AllowProfileCreation=True,
                   Fields=object_type_fields(),
                   Keys={"_rfmlake_customer": [{"StandardIdentifiers": ["PROFILE", "UNIQUE"],
                                                "FieldNames": ["customer_id"]}]})

    def profile_object(self, change: Change) -> dict[str, Any]:
        attrs = change.member.attributes if change.member else {}
        obj: dict[str, Any] = {"customer_id": change.customer_id}
        if change.kind == "exited":
            obj.update(rfm_segment=NO_SEGMENT, segment_status="exited")
        else:
            obj.update({k: str(v) for k, v in attrs.items() if v is not None})
            obj["segment_status"] = "member"
        if change.email:
            obj["email"] = change.email
        if change.phone:
            obj["phone"] = change.phone
        return obj

    def send(self, batch: Sequence[Change]) -> list[RecordFailure]:
        failures: list[RecordFailure] = []
        for start in range(0, len(batch), BATCH_PUT_MAX_ITEMS):
            chunk = batch[start:start + BATCH_PUT_MAX_ITEMS]
            try:
                response = self._call(self.client.batch_put_profile_object, DomainName=self.domain_name,
                                      ObjectTypeName=self.object_type,
                                      Items=[{"Id": f"r{i}", "Object": dumps(self.profile_object(c))}
                                             for i, c in enumerate(chunk)])
            except (RetryableError, PermanentError) as exc:
                # One call failing does not undo the calls before it: only this chunk's records fail.
                failures.extend(RecordFailure(c.customer_id, exc.reason, isinstance(exc, RetryableError))
                                for c in chunk)
                continue
            for item in response.get("Failed", []):
                code = int(item.get("Code") or 500)
                # Item ids are positions: customer ids may hold characters the API's id pattern refuses.
                customer_id = chunk[int(item["Id"][1:])].customer_id
                failures.append(RecordFailure(customer_id, f"{code}: {item.get('Message', '')}",
                                              retryable=is_retryable_code(None, code)))
        return failures
