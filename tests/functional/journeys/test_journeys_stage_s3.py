"""The journeys stage as the stage Lambda runs it on AWS: a lake on S3 (moto server, Glue catalog),
the journeys folder on S3, the stage in a workspace copy. The journey state, its journal and the
outbox are written to the lake on S3 as the stage goes, so a stage killed mid-send resumes from
there instead of sending again (docs/adr: journeys in the stage function)."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from aws_lake import PREFIX, new_bucket, upload_folder
from journey_lakes import NOON, JourneyLake, customer_ids, journey_set, win_back
from rfmlake.activation.destinations.outbox import OutboxDestination, read_outbox
from rfmlake.journeys.channels import outbox_location
from rfmlake.journeys.engine import advance
from rfmlake.journeys.store import JourneyStore
from rfmlake.lake import Lake, open_lake
from rfmlake.lake.workspace import copy_tables
from rfmlake.pipeline.remote import run_stage
from rfmlake.settings import load_settings

JOURNEY = win_back(holdout_percent=0, steps=[{"id": "offer", "email": {"template": "offer"}}])


def test_the_stage_keeps_its_journal_on_the_lake_and_resumes_from_it(aws, tmp_path: Path) -> None:
    local = Lake(tmp_path / "local")
    JourneyLake(local, 40, no_email={3}).score(NOON.date(), dict.fromkeys(customer_ids(40), "At Risk"))
    bucket = new_bucket(aws)
    folder = tmp_path / "journeys"
    (folder / "templates").mkdir(parents=True)
    (folder / "win_back.yaml").write_text(yaml.safe_dump(JOURNEY))
    (folder / "templates" / "offer.yaml").write_text("subject: Hello {{segment}}\ntext: Come back\n")
    journeys_uri = upload_folder(aws, folder, f"s3://{bucket}/config/journeys")
    config = tmp_path / "aws.yaml"
    config.write_text(yaml.safe_dump({"prefix": PREFIX, "journeys": {"dir": journeys_uri}}))
    remote_uri = f"s3://{bucket}/lake"
    remote = open_lake(remote_uri, load_settings(config), boto3_session=aws)
    copy_tables(local, remote, ["*"])

    # a stage that died after two batches of ten: what it sent is on S3, in the outbox and the journal
    where = outbox_location(remote_uri)

    class DiesAfterTwoBatches(OutboxDestination):
        calls = 0

        def send(self, batch):  # noqa: ANN001, ANN201
            failures = super().send(batch)
            DiesAfterTwoBatches.calls += 1
            if DiesAfterTwoBatches.calls == 2:
                raise SystemExit("the function timed out")
            return failures

    with pytest.raises(SystemExit):
        advance(local, journey_set(JOURNEY), dict.fromkeys(("email", "sms", "call", "event"),
                                                           DiesAfterTwoBatches(where, batch_size=10)),
                now=NOON, state_location=remote_uri)
    assert len(read_outbox(where)) == 19  # C000003 in the first batch has no email
    assert JourneyStore(remote_uri).meta() is not None

    result = run_stage("journeys", lake=remote_uri, config=str(config), run_id="aws-run")
    summary = result["summary"]
    assert summary["resumed"] and summary["status"] == "up_to_date"  # the tick was finished, nothing new
    assert set(result["lake"]["committed"]) == {"gold.journey_assignments", "gold.journey_results"}
    messages = Counter(m["customer_id"] for m in read_outbox(where))
    assert set(messages) == set(customer_ids(40)) - {"C000003"} and max(messages.values()) == 1
    state = [uri.split("/_system/")[1] for uri in remote.storage.walk(remote.system_uri())]
    assert "journeys/state.json" in state and not any("journeys/inflight" in s for s in state)
    assignments = remote.read_arrow(remote.require("gold", "journey_assignments"))
    assert sorted(assignments.column("customer_id").to_pylist()) == customer_ids(40)
    glue = aws.client("glue").get_partitions(DatabaseName=f"{PREFIX}_gold", TableName="journey_assignments")
    assert [p["Values"] for p in glue["Partitions"]] == [["win_back", NOON.date().isoformat()]]
    again = run_stage("journeys", lake=remote_uri, config=str(config), run_id="aws-run-2")
    assert again["summary"]["status"] == "up_to_date" and len(read_outbox(where)) == 39

    # the next run: ten more customers At Risk; their entries become a partition of their own, added
    # next to the first (the stage reads the table in place and only appends)
    shop = JourneyLake(local, 50, no_email={3})
    day2 = NOON.date() + timedelta(days=1)
    shop.score(day2, dict.fromkeys(customer_ids(50), "At Risk"))
    copy_tables(local, remote, ["gold.segment_membership_history", "gold.customer_rfm", "gold.fct_orders",
                                "silver.customers", "bronze.customers"])
    third = run_stage("journeys", lake=remote_uri, config=str(config), run_id="aws-run-3")
    assert third["summary"]["entered"] == {"win_back": 10}
    partitions = [p.key for p in remote.require("gold", "journey_assignments").partitions]
    assert partitions == [f"journey_id=win_back/entry_date={NOON.date()}", f"journey_id=win_back/entry_date={day2}"]
    assert remote.count_rows(remote.require("gold", "journey_assignments")) == 50
    assert len(read_outbox(where)) == 49
