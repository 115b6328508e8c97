"""Product recommendations: item-to-item similarity with a segment-popularity cold start
(rfmlake.recommend.model), its offline evaluation against a popularity baseline
(rfmlake.recommend.evaluation), the pipeline stage (rfmlake.recommend.job), what journeys and the
profile API read (rfmlake.recommend.serving) and the Amazon Personalize adapter
(rfmlake.recommend.personalize). docs/recommendations.md."""

from rfmlake.recommend.model import ItemSimilarityRecommender, PopularityRecommender
from rfmlake.recommend.serving import recommendations_for

__all__ = ["ItemSimilarityRecommender", "PopularityRecommender", "recommendations_for"]
