"""Deploying rfmlake to AWS: typed environments (config/<env>.yaml) and the `cdk` wrapper."""

from rfmlake.deploy.environment import DeployEnvironment, Environment, load_environment

__all__ = ["DeployEnvironment", "Environment", "load_environment"]
