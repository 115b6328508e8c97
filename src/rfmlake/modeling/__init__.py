"""Modeling: the dbt project (dbt/) run for a pipeline run, and gold exported into the lake."""

from rfmlake.modeling.dbt_runner import compile_athena, prepare_silver_views, run_dbt
from rfmlake.modeling.project import find_project_dir
from rfmlake.modeling.results import DbtResult, NodeResult

__all__ = ["DbtResult", "NodeResult", "compile_athena", "find_project_dir", "prepare_silver_views", "run_dbt"]
