"""speechmodel's models: DCNN-BLSTMwA, its parts, the CNN baselines and
the backbones. Import the submodules for the details."""

from speechmodel.models.alexnet import AlexNet
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

__all__ = [
    "AlexNet",
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
    "build_model",
    "get_backbone",
    "load_torchvision_weights",
]
