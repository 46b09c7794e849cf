"""speechmodel's models: DCNN-BLSTMwA, its parts, the CNN baselines and
the backbones. Import the submodules for the details."""

from speechmodel.models.alexnet import AlexNet
from speechmodel.models.audio_speech_model import AudioSpeechModel
from speechmodel.models.backbones import BACKBONE_NAMES
from speechmodel.models.backbones import get_backbone
from speechmodel.models.cnn4 import CNN4
from speechmodel.models.recognizer import EmotionRecognizer
from speechmodel.models.registry import MODEL_NAMES
from speechmodel.models.registry import build_model
from speechmodel.models.resnet import ResNet
from speechmodel.models.segment_classifier import SegmentClassifier
from speechmodel.models.segment_encoder import SegmentEncoder
from speechmodel.models.sequence_head import SequenceHead
from speechmodel.models.speech_model import SpeechModel
from speechmodel.models.torchvision_weights import load_torchvision_weights
from speechmodel.models.vgg import VGG
from speechmodel.models.whisper import WhisperAudioConverter
from speechmodel.models.whisper import WhisperEncoder
from speechmodel.models.whisper import WhisperSegmentEmbedder

__all__ = [
    "AlexNet",
    "AudioSpeechModel",
    "BACKBONE_NAMES",
    "CNN4",
    "EmotionRecognizer",
    "MODEL_NAMES",
    "ResNet",
    "SegmentClassifier",
    "SegmentEncoder",
    "SequenceHead",
    "SpeechModel",
    "VGG",
    "WhisperAudioConverter",
    "WhisperEncoder",
    "WhisperSegmentEmbedder",
    "build_model",
    "get_backbone",
    "load_torchvision_weights",
]
