"""Keras layers of speechmodel (all registered as ``speechmodel>Name``)."""

from speechmodel.layers.attention_pooling import AttentionPooling
from speechmodel.layers.imagenet_preprocessing import ImageNetPreprocessing
from speechmodel.layers.masked_time_distributed import MaskedTimeDistributed

__all__ = ["AttentionPooling", "ImageNetPreprocessing", "MaskedTimeDistributed"]
