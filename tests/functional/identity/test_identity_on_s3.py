"""The identity stage on a lake on S3 (moto server, Glue catalog) as the stage function runs it: its
growing inputs (bronze customers, silver events, ...) are read in place, never copied into the
function's /tmp; the graph it commits is a Glue table Athena reads, with the same people as a local
run on the same data."""

from __future__ import annotations

import pytest
from test_identity_graph import _landing, _people  # type: ignore[import-not-found]

from aws_lake import PREFIX, new_bucket, upload_folder
from rfmlake.identity import resolve_identity
from rfmlake.ingest.engine import DuckEngine
from rfmlake.ingest.jobs import run_ingest
from rfmlake.lake import Lake, open_lake
from rfmlake.pipeline.context import RunContext
from rfmlake.pipeline.remote import run_stage
from rfmlake.settings import Settings, load_settings


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RFMLAKE_PII_KEY", "a1" * 32)


def test_identity_stage_reads_in_place_and_commits_a_glue_table(tmp_path, aws) -> None:  # type: ignore[no-untyped-def]
    landing = _landing(tmp_path)
    local = Lake(tmp_path / "built")
    engine = DuckEngine()
    try:
        run_ingest(engine, RunContext(landing_dir=landing, lake=local, settings=Settings()))
    finally:
        engine.close()
    location = upload_folder(aws, local.root, f"s3://{new_bucket(aws)}/lake")
    config = tmp_path / "settings.yaml"
    config.write_text(f"prefix: {PREFIX}\n")

    result = run_stage("identity", lake=location, config=str(config), run_id="s3-identity")
    assert result["summary"]["pairs_kept"] == 0
    # The next run reads the state the first one published to S3: the unchanged pairs are kept.
    again = run_stage("identity", lake=location, config=str(config), run_id="s3-identity-2")
    assert again["summary"]["records_rescored"] == 0
    assert again["summary"]["pairs_kept"] == result["summary"]["pairs_scored"] > 0

    pulled = set(result["lake"]["pulled"])
    assert not pulled & {"bronze.customers", "silver.customers", "silver.events", "silver.orders"}
    assert {"gold.identity_graph", "gold.identity_matches", "gold.identity_changes"} <= set(result["lake"]["committed"])
    table = aws.client("glue").get_table(DatabaseName=f"{PREFIX}_gold", Name="identity_graph")["Table"]
    columns = [c["Name"] for c in table["StorageDescriptor"]["Columns"]]
    assert columns[:3] == ["person_id", "member_kind", "member_id"] and "joined_by" in columns
    assert table["StorageDescriptor"]["Location"].startswith(location)

    s3_lake = open_lake(location, load_settings(config), boto3_session=aws)
    engine = DuckEngine()
    try:
        resolve_identity(RunContext(landing_dir=landing, lake=local, settings=Settings(), run_id="s3-identity"), engine)
    finally:
        engine.close()
    on_s3 = {k: (v["person_id"], v["joined_by"]) for k, v in _people(s3_lake).items()}
    assert on_s3 == {k: (v["person_id"], v["joined_by"]) for k, v in _people(local).items()}
    assert s3_lake.read_system("models", "identity", "model.json") is not None  # its state is published
