"""Named RFM segments from a versioned rule table (shipped: segment_rules.yaml; users can replace it)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from rfmlake.errors import ConfigError

SHIPPED_RULES = "segment_rules.yaml"


def fm_score(f_score: pd.Series | np.ndarray, m_score: pd.Series | np.ndarray) -> np.ndarray:
    """Mean of the f and m scores rounded half up: (f + m) / 2 is whole or .5, so this is (f+m+1)//2."""
    f = np.asarray(f_score, dtype="int64")
    m = np.asarray(m_score, dtype="int64")
    return (f + m + 1) // 2


def rfm_cell(r_score: pd.Series, f_score: pd.Series, m_score: pd.Series) -> pd.Series:
    """The "rfm" cell string, e.g. "543"; scores above 9 (n_bins 10) would need a separator."""
    return r_score.astype(str) + f_score.astype(str) + m_score.astype(str)


@dataclass(frozen=True)
class SegmentRule:
    name: str
    r: tuple[int, int]   # inclusive r_score range
    fm: tuple[int, int]  # inclusive fm_score range
    description: str = ""

    def covers(self, r: int, fm: int) -> bool:
        return self.r[0] <= r <= self.r[1] and self.fm[0] <= fm <= self.fm[1]


@dataclass(frozen=True)
class SegmentRules:
    """An ordered rule table over (r_score, fm_score); the first matching rule names the segment."""

    version: int
    n_bins: int
    rules: tuple[SegmentRule, ...]
    source: str = "shipped"

    # -- loading --------------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path | None = None, *, expected_n_bins: int | None = None) -> SegmentRules:
        """The shipped table (path None) or a user's YAML file, validated. Raises ConfigError naming
        the file and the offending rule. `expected_n_bins` (settings.rfm.score_bins) must match the
        table's n_bins, since a table written for 5 scores means nothing for 4."""
        if path is None:
            source = f"rfmlake/rfm/{SHIPPED_RULES} (shipped)"
            text = resources.files("rfmlake.rfm").joinpath(SHIPPED_RULES).read_text()
        else:
            source = str(path)
            file = Path(path)
            if not file.is_file():
                raise ConfigError(f"segment rules file not found: {file}")
            text = file.read_text()
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"segment rules file {source} is not valid YAML: {exc}") from None
        rules = cls.from_dict(data, source=source)
        if expected_n_bins is not None and rules.n_bins != expected_n_bins:
            raise ConfigError(
                f"segment rules file {source} is written for n_bins={rules.n_bins}, but "
                f"rfm.score_bins is {expected_n_bins}; set segmentation.rules_file to a table for "
                f"{expected_n_bins} bins"
            )
        return rules

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "stored rules") -> SegmentRules:
        def fail(message: str) -> ConfigError:
            return ConfigError(f"segment rules file {source}: {message}")

        if not isinstance(data, dict):
            raise fail("must be a mapping with keys version, n_bins, segments")
        unknown = sorted(set(data) - {"version", "n_bins", "segments"})
        if unknown:
            raise fail(f"unknown key(s) {unknown}; allowed: version, n_bins, segments")
        version, n_bins, segments = data.get("version"), data.get("n_bins"), data.get("segments")
        if not _is_int(version) or version < 1:
            raise fail(f"'version' must be a positive integer, got {version!r}")
        if not _is_int(n_bins) or not 2 <= n_bins <= 10:
            raise fail(f"'n_bins' must be an integer in 2..10, got {n_bins!r}")
        if not isinstance(segments, list) or not segments:
            raise fail("'segments' must be a non-empty list of rules")
        rules: list[SegmentRule] = []
        seen: set[str] = set()
        for position, item in enumerate(segments, start=1):
            label = f"rule #{position}"
            if not isinstance(item, dict):
                raise fail(f"{label} must be a mapping with name, r, fm")
            name = item.get("name")
            if not isinstance(name, str) or not name.strip():
                raise fail(f"{label} needs a non-empty 'name'")
            label = f"rule #{position} ({name!r})"
            extra = sorted(set(item) - {"name", "r", "fm", "description"})
            if extra:
                raise fail(f"{label} has unknown key(s) {extra}; allowed: name, r, fm, description")
            if name in seen:
                raise fail(f"{label}: segment name {name!r} is used by an earlier rule; names must be unique")
            seen.add(name)
            ranges = {}
            for key in ("r", "fm"):
                value = item.get(key)
                if (
                    not isinstance(value, list | tuple)
                    or len(value) != 2
                    or not all(_is_int(v) for v in value)
                ):
                    raise fail(f"{label}: '{key}' must be a [low, high] pair of integers, got {value!r}")
                low, high = int(value[0]), int(value[1])
                if not 1 <= low <= high <= n_bins:
                    raise fail(f"{label}: '{key}' range {[low, high]} must satisfy 1 <= low <= high <= {n_bins}")
                ranges[key] = (low, high)
            description = item.get("description", "")
            if not isinstance(description, str):
                raise fail(f"{label}: 'description' must be a string")
            rules.append(SegmentRule(name=name, r=ranges["r"], fm=ranges["fm"], description=description))
        table = cls(version=int(version), n_bins=int(n_bins), rules=tuple(rules), source=source)
        uncovered = table.uncovered_cells()
        if uncovered:
            cells = ", ".join(f"(r={r}, fm={fm})" for r, fm in uncovered)
            raise fail(f"{len(uncovered)} (r, fm) cell(s) match no rule: {cells}; every cell of the "
                       f"{n_bins}x{n_bins} grid needs a segment")
        return table

    # -- use ------------------------------------------------------------------------------------
    def uncovered_cells(self) -> list[tuple[int, int]]:
        cells = range(1, self.n_bins + 1)
        return [(r, fm) for r in cells for fm in cells if not any(rule.covers(r, fm) for rule in self.rules)]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(rule.name for rule in self.rules)

    def segment_of(self, r: int, fm: int) -> str:
        for rule in self.rules:
            if rule.covers(r, fm):
                return rule.name
        raise ValueError(f"no segment rule covers r={r}, fm={fm}")  # unreachable for a validated table

    def assign(self, scores: pd.DataFrame) -> pd.Series:
        """Segment name per row of a frame with r_score, f_score, m_score; first matching rule wins."""
        missing = [c for c in ("r_score", "f_score", "m_score") if c not in scores.columns]
        if missing:
            raise ValueError(f"scores frame lacks column(s) {missing}")
        r = scores["r_score"].to_numpy(dtype="int64")
        fm = fm_score(scores["f_score"], scores["m_score"])
        for column, values in (("r_score", r), ("f_score", scores["f_score"]), ("m_score", scores["m_score"])):
            values = np.asarray(values)
            if len(values) and (values.min() < 1 or values.max() > self.n_bins):
                raise ValueError(f"{column} outside 1..{self.n_bins}; were the scores made with another n_bins?")
        # The grid is tiny (n x n): look each cell up once, then index, instead of masking per rule.
        grid = np.array([[self.segment_of(ri, fi) for fi in range(1, self.n_bins + 1)]
                         for ri in range(1, self.n_bins + 1)], dtype=object)
        names = grid[r - 1, fm - 1] if len(r) else np.array([], dtype=object)
        return pd.Series(names, index=scores.index, name="rfm_segment", dtype="object")

    # -- storage --------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "n_bins": self.n_bins,
            "segments": [
                {"name": r.name, "r": list(r.r), "fm": list(r.fm), "description": r.description}
                for r in self.rules
            ],
        }

    @property
    def digest(self) -> str:
        """Content hash: two tables with the same version number but other rules differ here."""
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
