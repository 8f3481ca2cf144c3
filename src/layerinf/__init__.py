"""layerinf: per-module training-data influence for language models.

The companion package of the book reproducing Vitel & Chhabra, "First is Not Really Better Than
Last" (ICLR 2026). Sign convention everywhere: larger score = more beneficial; the most harmful
training examples have the lowest scores and removal drops the lowest.

Importing the package is cheap: the NumPy-only modules (config, scores, aggregation, metrics,
comparison) never import torch.
"""

__version__ = "0.1.0"
