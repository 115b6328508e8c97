"""Journeys as code: segment changes trigger messages, with holdout groups and measured lift
(docs/journeys.md). `run_journeys` is the one entry every runtime calls."""

from rfmlake.journeys.engine import TickReport, advance
from rfmlake.journeys.errors import JourneyError
from rfmlake.journeys.run import JourneysRun, run_journeys
from rfmlake.journeys.spec import Journey, JourneySet, load_journeys, parse_journey

__all__ = ["Journey", "JourneyError", "JourneySet", "JourneysRun", "TickReport", "advance", "load_journeys",
           "parse_journey", "run_journeys"]
