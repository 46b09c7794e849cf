"""OpenAI Whisper's audio encoder for speechmodel: the log-mel front end
(``WhisperAudioConverter``), the encoder (``WhisperEncoder``), its weights
(``load_whisper_weights``), its outputs pooled onto the segment grid
(``WhisperSegmentEmbedder``) and the sizes of Whisper base
(``whisper_config``). Imported when first asked for, as
``speechmodel.models``."""

import importlib

_LAZY = {
    "WhisperAudioConverter": "speechmodel.models.whisper.whisper_audio_converter",
    "WhisperEncoder": "speechmodel.models.whisper.whisper_encoder",
    "WhisperSegmentEmbedder": "speechmodel.models.whisper.whisper_segment_embedder",
    "WhisperWeightsNotFoundError": "speechmodel.models.whisper.whisper_weights",
    "load_whisper_weights": "speechmodel.models.whisper.whisper_weights",
}

__all__ = sorted(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
