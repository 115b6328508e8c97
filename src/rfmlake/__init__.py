"""rfmlake: RFM customer segmentation on a governed data lake."""

__version__ = "0.1.0"
