"""Keras layers of speechmodel (all registered as ``speechmodel>Name``)."""

from speechmodel.layers.adaptive_average_pooling import AdaptiveAveragePooling
from speechmodel.layers.attention_pooling import AttentionPooling
from speechmodel.layers.block_weighted_sum import BlockWeightedSum
from speechmodel.layers.imagenet_preprocessing import ImageNetPreprocessing
from speechmodel.layers.log_mel_segments import LogMelSegments
from speechmodel.layers.masked_time_distributed import MaskedTimeDistributed
from speechmodel.layers.speaker_normalization import SpeakerNormalization
from speechmodel.layers.temperature_scaling import TemperatureScaling

__all__ = [
    "AdaptiveAveragePooling",
    "AttentionPooling",
    "BlockWeightedSum",
    "ImageNetPreprocessing",
    "LogMelSegments",
    "MaskedTimeDistributed",
    "SpeakerNormalization",
    "TemperatureScaling",
]
