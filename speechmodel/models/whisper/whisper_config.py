"""The sizes of Whisper base's encoder, the one place they are written.

``WhisperAudioConverter``, ``WhisperEncoder``, ``WhisperSegmentEmbedder``,
the weights readers and the front-end registry take their defaults from
``WHISPER_BASE_CONFIG``. Plain values: importing this imports no
TensorFlow.
"""

import dataclasses


@dataclasses.dataclass(frozen=True)
class WhisperConfig:
    """The architecture of a Whisper encoder.

    Attributes:
        num_layers: transformer blocks.
        hidden_dim: model width (``d_model``).
        num_heads: attention heads.
        intermediate_dim: MLP width.
        num_mels: mel bands of the input.
        max_positions: positional embeddings (30 s of audio at 50 frames/s).
    """

    num_layers: int
    hidden_dim: int
    num_heads: int
    intermediate_dim: int
    num_mels: int
    max_positions: int

    def to_dict(self):
        return dataclasses.asdict(self)


WHISPER_BASE_CONFIG = WhisperConfig(
    num_layers=6, hidden_dim=512, num_heads=8, intermediate_dim=2048, num_mels=80, max_positions=1500,
)
