"""Ingestion: landing -> bronze -> silver as PySpark transforms (pure DataFrame -> DataFrame) and the
job runners that Glue scripts and the local pipeline call."""
