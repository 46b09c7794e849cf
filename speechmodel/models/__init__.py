"""speechmodel's models: DCNN-BLSTMwA, its parts, the CNN baselines and
the backbones. Import the submodules for the details.

Nothing is imported until it is asked for (``_LAZY``), so that the name
tables of ``speechmodel.models.registry`` and ``.frontends`` are read
without TensorFlow. ``registry.import_classes()`` imports every model
module, for Keras to find their registered classes in a saved file.
"""

from speechmodel.lazy import lazy_names

_LAZY = {
    "AlexNet": "speechmodel.models.alexnet",
    "AudioSpeechModel": "speechmodel.models.audio_speech_model",
    "BACKBONE_NAMES": "speechmodel.models.registry",
    "CNN4": "speechmodel.models.cnn4",
    "EmotionRecognizer": "speechmodel.models.recognizer",
    "MODEL_NAMES": "speechmodel.models.registry",
    "ResNet": "speechmodel.models.resnet",
    "SegmentClassifier": "speechmodel.models.segment_classifier",
    "SegmentEncoder": "speechmodel.models.segment_encoder",
    "SequenceHead": "speechmodel.models.sequence_head",
    "SpeechModel": "speechmodel.models.speech_model",
    "VGG": "speechmodel.models.vgg",
    "WhisperAudioConverter": "speechmodel.models.whisper",
    "WhisperEncoder": "speechmodel.models.whisper",
    "WhisperSegmentEmbedder": "speechmodel.models.whisper",
    "build_model": "speechmodel.models.registry",
    "get_backbone": "speechmodel.models.backbones",
    "load_torchvision_weights": "speechmodel.models.torchvision_weights",
}

__all__ = sorted(_LAZY)
__getattr__, __dir__ = lazy_names(__name__, _LAZY)
