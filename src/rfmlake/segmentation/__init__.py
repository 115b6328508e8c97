"""Segmentation: KMeans clusters, the stored segmentation model, and the one code path from RFM
features to gold.customer_rfm rows (the local job is rfmlake.segmentation.job).

The names below are imported when first used (PEP 562): what only needs the model store's layout
(the run's kept state, rfmlake.pipeline.rollback) does not pay for scikit-learn's import (about 3 s
on a loaded machine, in every Lambda that records a run's start)."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rfmlake.segmentation.clustering import RfmClusterer
    from rfmlake.segmentation.model import ModelStore, SegmentationModel
    from rfmlake.segmentation.report import SegmentationReport
    from rfmlake.segmentation.segment import customer_rfm_to_arrow, segment_features

_MODULES = {
    "ModelStore": "model",
    "RfmClusterer": "clustering",
    "SegmentationModel": "model",
    "SegmentationReport": "report",
    "customer_rfm_to_arrow": "segment",
    "segment_features": "segment",
}

__all__ = [
    "ModelStore",
    "RfmClusterer",
    "SegmentationModel",
    "SegmentationReport",
    "customer_rfm_to_arrow",
    "segment_features",
]


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{module}"), name)
