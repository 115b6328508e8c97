"""Exceptions a user can act on. The CLI prints their message and exits non-zero, never a traceback."""


class RfmlakeError(Exception):
    """Base for every error rfmlake reports to a user."""


class ConfigError(RfmlakeError):
    """The configuration file or a setting is invalid."""


class LandingError(RfmlakeError):
    """The landing folder cannot be ingested (missing, empty, unknown entity, unreadable file)."""


class QualityError(RfmlakeError):
    """A critical data-quality expectation failed; the run stops."""


class PipelineError(RfmlakeError):
    """A pipeline stage failed."""


class MetricsError(RfmlakeError):
    """Run metrics cannot be published (unknown publisher, rejected or unreachable metrics service)."""
