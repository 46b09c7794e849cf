"""OpenAI Whisper's audio encoder for speechmodel: the log-mel front end
(``WhisperAudioConverter``), the encoder (``WhisperEncoder``), its weights
(``load_whisper_weights``), its outputs pooled onto the segment grid
(``WhisperSegmentEmbedder``) and the sizes of Whisper base
(``whisper_config``). Imported when first asked for, as
``speechmodel.models``."""

from speechmodel.lazy import lazy_names

_LAZY = {
    "WhisperAudioConverter": "speechmodel.models.whisper.whisper_audio_converter",
    "WhisperEncoder": "speechmodel.models.whisper.whisper_encoder",
    "WhisperSegmentEmbedder": "speechmodel.models.whisper.whisper_segment_embedder",
    "WhisperWeightsNotFoundError": "speechmodel.models.whisper.whisper_weights",
    "load_whisper_weights": "speechmodel.models.whisper.whisper_weights",
}

__all__ = sorted(_LAZY)
__getattr__, __dir__ = lazy_names(__name__, _LAZY)
