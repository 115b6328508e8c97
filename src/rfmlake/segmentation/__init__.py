"""Segmentation: KMeans clusters, the stored segmentation model, and the one code path from RFM
features to gold.customer_rfm rows (the local job is rfmlake.segmentation.job)."""

from rfmlake.segmentation.clustering import RfmClusterer
from rfmlake.segmentation.model import ModelStore, SegmentationModel
from rfmlake.segmentation.report import SegmentationReport
from rfmlake.segmentation.segment import customer_rfm_to_arrow, segment_features

__all__ = [
    "ModelStore",
    "RfmClusterer",
    "SegmentationModel",
    "SegmentationReport",
    "customer_rfm_to_arrow",
    "segment_features",
]
