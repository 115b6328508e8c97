"""get_spark sets a master only where nothing else provides one: never on Glue or under spark-submit."""

from __future__ import annotations

import importlib.util

import pytest

from rfmlake.ingest.spark import local_master


@pytest.fixture()
def no_awsglue(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "awsglue" else real(name, *a))
    # A Spark test earlier in the same worker may have left a context running; this is a fresh driver.
    from pyspark import SparkContext

    monkeypatch.setattr(SparkContext, "_active_spark_context", None)


def test_local_default_is_every_core(no_awsglue):
    assert local_master(env={}) == "local[*]"


def test_explicit_master_and_setting_win(no_awsglue):
    assert local_master("local[2]", env={"PYSPARK_GATEWAY_PORT": "4040"}) == "local[2]"
    assert local_master(env={"RFMLAKE_SPARK_MASTER": "spark://head:7077"}) == "spark://head:7077"


@pytest.mark.parametrize("marker", ["GLUE_VERSION", "GLUE_PYTHON_VERSION", "PYSPARK_GATEWAY_PORT"])
def test_no_master_where_the_environment_provides_one(no_awsglue, marker):
    assert local_master(env={marker: "5.0"}) is None


def test_no_master_where_awsglue_is_importable(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: object() if name == "awsglue" else real(name, *a))
    assert local_master(env={}) is None


def test_no_master_where_a_context_is_already_running(no_awsglue, monkeypatch):
    from pyspark import SparkContext

    monkeypatch.setattr(SparkContext, "_active_spark_context", object())
    assert local_master(env={}) is None
