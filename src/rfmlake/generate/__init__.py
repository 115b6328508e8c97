"""Seeded synthetic landing data for every entity of the landing contract (`rfmlake generate`)."""

from rfmlake.generate.landing import MANIFEST_NAME, GenerationError, GenerationSummary, generate_landing

__all__ = ["MANIFEST_NAME", "GenerationError", "GenerationSummary", "generate_landing"]
