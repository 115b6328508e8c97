"""RFM: features (pandas reference), scores 1..n that never split ties, named segment rules."""

from rfmlake.rfm.features import compute_rfm_features_pandas
from rfmlake.rfm.rules import SegmentRule, SegmentRules, fm_score, rfm_cell
from rfmlake.rfm.scoring import SCORED_FEATURES, RfmScorer

__all__ = [
    "SCORED_FEATURES",
    "RfmScorer",
    "SegmentRule",
    "SegmentRules",
    "compute_rfm_features_pandas",
    "fm_score",
    "rfm_cell",
]
