"""The fitted segmentation model (scorer + rule table + clusterer) and its versioned JSON store.

DESIGN.md: "Bin edges are fitted once and stored with the model version, so scores from two runs
are comparable and the same input always gives the same output." A model is stored at
`<store>/<model_version>/model.json` (store = lake.models_dir / "segmentation" locally, the
processing job's model directory on SageMaker); the file `<store>/current` names the model in use.
model_version is "seg-" + 12 hex digits of the sha256 of the canonical JSON of the fitted
parameters, so fitting the same data with the same settings gives the same version.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rfmlake.errors import PipelineError
from rfmlake.rfm.rules import SegmentRules
from rfmlake.rfm.scoring import RfmScorer
from rfmlake.settings import Settings

if TYPE_CHECKING:
    from rfmlake.segmentation.clustering import RfmClusterer

MODEL_FORMAT = 1
MODEL_FILE = "model.json"
CURRENT_POINTER = "current"


def settings_used(settings: Settings) -> dict[str, Any]:
    """The settings that shape a fitted model; a stored model fitted with other values is refitted."""
    seg = settings.segmentation
    return {
        "n_bins": settings.rfm.score_bins,
        "k": seg.k,
        "k_min": seg.k_min,
        "k_max": seg.k_max,
        "random_state": seg.random_state,
        "silhouette_sample_size": seg.silhouette_sample_size,
        "min_cluster_share": seg.min_cluster_share,
        "min_cluster_size": seg.min_cluster_size,
    }


def _canonical(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), allow_nan=False)


@dataclass
class SegmentationModel:
    scorer: RfmScorer
    rules: SegmentRules
    clusterer: RfmClusterer
    settings: dict[str, Any]
    # Where it was fitted; kept out of the version hash so identical fits share a version.
    fitted_on: dict[str, Any] = field(default_factory=dict)

    def fitted_params(self) -> dict[str, Any]:
        return {
            "format": MODEL_FORMAT,
            "settings": self.settings,
            "scorer": self.scorer.to_dict(),
            "rules": self.rules.to_dict(),
            "clusterer": self.clusterer.to_dict(),
        }

    @property
    def model_version(self) -> str:
        digest = hashlib.sha256(_canonical(self.fitted_params()).encode()).hexdigest()
        return f"seg-{digest[:12]}"

    def to_dict(self) -> dict[str, Any]:
        return {"model_version": self.model_version, "fitted_on": self.fitted_on, **self.fitted_params()}

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "stored model") -> SegmentationModel:
        from rfmlake.segmentation.clustering import RfmClusterer

        if not isinstance(data, dict) or data.get("format") != MODEL_FORMAT:
            raise PipelineError(f"{source} is not a segmentation model of format {MODEL_FORMAT}")
        try:
            model = cls(
                scorer=RfmScorer.from_dict(data["scorer"]),
                rules=SegmentRules.from_dict(data["rules"], source=f"{source} (rules)"),
                clusterer=RfmClusterer.from_dict(data["clusterer"]),
                settings=dict(data["settings"]),
                fitted_on=dict(data.get("fitted_on", {})),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise PipelineError(f"{source} is malformed: {exc}") from None
        stated = data.get("model_version")
        if stated is not None and stated != model.model_version:
            raise PipelineError(
                f"{source} says model_version {stated} but its content hashes to {model.model_version}; "
                "the file was edited or damaged. Refit with segmentation.refit: true"
            )
        return model

    def refit_reason(self, settings: Settings, rules: SegmentRules) -> str | None:
        """Why this stored model cannot serve a run with these settings and rules (None: it can)."""
        wanted = settings_used(settings)
        if self.settings.get("n_bins") != wanted["n_bins"]:
            return f"stored model has n_bins={self.settings.get('n_bins')}, settings say {wanted['n_bins']}"
        if self.rules.digest != rules.digest:
            return (f"segment rules changed (stored: version {self.rules.version}, {self.rules.digest}; "
                    f"now: version {rules.version}, {rules.digest})")
        changed = sorted(k for k in wanted if self.settings.get(k) != wanted[k])
        if changed:
            detail = ", ".join(f"{k}: {self.settings.get(k)!r} -> {wanted[k]!r}" for k in changed)
            return f"segmentation settings changed ({detail})"
        if self.clusterer.is_skipped:
            # Fitted on too little data to cluster: refit every run until the data allows clusters,
            # so a young shop's first customers do not fix its bins and clusters for good.
            return "the stored model has no clusters (too little data when it was fitted); refitting"
        return None


class ModelStore:
    """Versioned model folders under `root` plus a `current` pointer, written atomically."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def path_of(self, model_version: str) -> Path:
        return self.root / model_version / MODEL_FILE

    def save(self, model: SegmentationModel, *, make_current: bool = True) -> Path:
        version = model.model_version
        path = self.path_of(version)
        path.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write(path, json.dumps(model.to_dict(), indent=2, sort_keys=True, allow_nan=False) + "\n")
        if make_current:
            _atomic_write(self.root / CURRENT_POINTER, version + "\n")
        return path

    def set_current(self, model_version: str | None) -> None:
        """Point `current` at a stored model again (None: no current model), as a failed run that
        saved a new one leaves it (rfmlake.pipeline.runner)."""
        pointer = self.root / CURRENT_POINTER
        if model_version is None:
            pointer.unlink(missing_ok=True)
            return
        if not self.path_of(model_version).is_file():
            raise PipelineError(f"segmentation model {model_version} not found at {self.path_of(model_version)}")
        _atomic_write(pointer, model_version + "\n")

    def current_version(self) -> str | None:
        pointer = self.root / CURRENT_POINTER
        if not pointer.is_file():
            return None
        version = pointer.read_text().strip()
        return version or None

    def load(self, model_version: str) -> SegmentationModel:
        path = self.path_of(model_version)
        if not path.is_file():
            raise PipelineError(f"segmentation model {model_version} not found at {path}")
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise PipelineError(f"segmentation model {path} is not valid JSON: {exc}") from None
        return SegmentationModel.from_dict(data, source=str(path))

    def current(self) -> SegmentationModel | None:
        version = self.current_version()
        return None if version is None else self.load(version)


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    tmp.write_text(text)
    os.replace(tmp, path)
