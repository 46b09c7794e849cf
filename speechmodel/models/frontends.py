"""Pretrained speech encoders as segment embedders: the one registry.

A front end turns 16 kHz waveforms into one embedding per segment of the
paper's segment grid (the ``N`` segments ``speechmodel.features`` gives an
utterance), from each of its ``num_blocks`` blocks:
``(waveforms (B, S), lengths (B,)) -> (embeddings (B, N, L, D), mask (B, N))``.
``SpeechModel``'s BLSTM + attention + DNN head mixes the blocks with
learned weights (``speechmodel.layers.BlockWeightedSum``).

Selecting one is a name: ``build_model("speechmodel",
backbone="whisper_base")`` or ``train.py --backbone whisper_base``. Adding
one is an entry here: a name, the class that builds it, its default
pretrained weights, and its sizes.

================  ===========================================  ======  =====
name              encoder                                      blocks  width
================  ===========================================  ======  =====
whisper_base      OpenAI Whisper base encoder (MIT licence)    6       512
================  ===========================================  ======  =====
"""

import dataclasses
import importlib

from speechmodel.models.whisper.whisper_config import WHISPER_BASE_CONFIG


@dataclasses.dataclass(frozen=True)
class FrontEnd:
    """A registered pretrained front end.

    Attributes:
        name: the registry name.
        description: one line for listings.
        class_path: ``module.Class`` of the embedder layer.
        weights: its default pretrained weights (a source name the class
            resolves: installed package, Keras cache or download).
        num_blocks: the blocks whose outputs it returns.
        embedding_dim: the width of one block's output.
        licence: the weights' licence.
    """

    name: str
    description: str
    class_path: str
    weights: str
    num_blocks: int
    embedding_dim: int
    licence: str

    def embedder_class(self):
        module, _, cls = self.class_path.rpartition(".")
        return getattr(importlib.import_module(module), cls)


FRONT_ENDS = {
    "whisper_base": FrontEnd(
        name="whisper_base",
        description="OpenAI Whisper base encoder, per-block segment embeddings",
        class_path="speechmodel.models.whisper.whisper_segment_embedder.WhisperSegmentEmbedder",
        weights="whisper_base",
        num_blocks=WHISPER_BASE_CONFIG.num_layers,
        embedding_dim=WHISPER_BASE_CONFIG.hidden_dim,
        licence="MIT",
    ),
}
FRONT_END_NAMES = tuple(FRONT_ENDS)


def is_front_end(name):
    """Whether ``name`` is a registered pretrained front end."""
    return isinstance(name, str) and name in FRONT_ENDS


def get_front_end(name):
    """The ``FrontEnd`` entry of ``name``.

    Raises:
        ValueError: unknown name; the message lists the known ones.
    """
    if not is_front_end(name):
        raise ValueError(
            f"Unknown front end; known: {list(FRONT_END_NAMES)}. Received: backbone={name!r}"
        )
    return FRONT_ENDS[name]


def build_front_end(name, *, feature_config=None, weights=None, fine_tune_blocks=0, **options):
    """Builds the segment embedder of a registered front end.

    Args:
        name: a key of ``FRONT_ENDS``.
        feature_config: dict of ``FeatureConfig`` fields: the segment grid
            the embeddings are pooled onto.
        weights: ``None`` or ``"pretrained"`` (the entry's default
            pretrained weights), a weights file, or ``"random"`` (random
            initialisation: tests and experiments only).
        fine_tune_blocks: int, the top blocks that train (0: frozen).
        **options: further constructor arguments of the embedder class
            (e.g. smaller sizes with ``weights="random"``).

    Returns:
        The embedder layer (``num_blocks`` and ``embedding_dim`` attributes).
    """
    entry = get_front_end(name)
    if weights == "imagenet":
        raise ValueError(
            f"The front end {name!r} is a speech encoder with its own pretrained weights "
            "(weights=None or 'pretrained'), not an ImageNet CNN. Received: weights='imagenet'"
        )
    if weights in (None, "pretrained"):
        weights = entry.weights
    elif weights == "random":
        weights = None
    return entry.embedder_class()(
        feature_config=feature_config,
        weights=weights,
        fine_tune_blocks=fine_tune_blocks,
        name=f"{name}_embedder",
        **options,
    )
