"""The rfmlake AWS CDK app: storage, catalog, governance, compute and orchestration stacks."""
