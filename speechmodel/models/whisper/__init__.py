"""OpenAI Whisper's audio encoder for speechmodel: the log-mel front end
(``WhisperAudioConverter``), the encoder (``WhisperEncoder``), its weights
(``load_whisper_weights``) and its outputs pooled onto the segment grid
(``WhisperSegmentEmbedder``)."""

from speechmodel.models.whisper.whisper_audio_converter import WhisperAudioConverter
from speechmodel.models.whisper.whisper_encoder import WhisperEncoder
from speechmodel.models.whisper.whisper_segment_embedder import WhisperSegmentEmbedder
from speechmodel.models.whisper.whisper_weights import WhisperWeightsNotFoundError
from speechmodel.models.whisper.whisper_weights import load_whisper_weights

__all__ = [
    "WhisperAudioConverter",
    "WhisperEncoder",
    "WhisperSegmentEmbedder",
    "WhisperWeightsNotFoundError",
    "load_whisper_weights",
]
