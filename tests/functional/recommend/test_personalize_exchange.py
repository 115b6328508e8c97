"""The Personalize exchange on S3 (moto server): the recommendations stage's export lands where the
dataset import jobs and the batch inference job read it, ready.json last."""

from __future__ import annotations

from recommend_inputs import REGION, RUN, inputs
from rfmlake.recommend import personalize


def test_exports_to_s3(aws) -> None:
    aws.client("s3").create_bucket(Bucket="exchange", CreateBucketConfiguration={"LocationConstraint": REGION})
    export = personalize.export_datasets(inputs(), "s3://exchange/p", RUN, boto3_session=aws)
    assert export.run_uri == f"s3://exchange/p/runs/{RUN}"
    listed = aws.client("s3").list_objects_v2(Bucket="exchange")["Contents"]
    assert sorted(o["Key"] for o in listed) == [f"p/runs/{RUN}/{k}" for k in (
        "batch/users.jsonl", "interactions/interactions.csv", "items/items.csv", "ready.json", "users/users.csv")]
    body = aws.client("s3").get_object(Bucket="exchange", Key=f"p/runs/{RUN}/interactions/interactions.csv")["Body"]
    assert body.read().decode().splitlines()[0] == "USER_ID,ITEM_ID,TIMESTAMP,EVENT_TYPE"
