import inspect
import subprocess
import sys

from speechmodel.models.whisper.whisper_config import WHISPER_BASE_CONFIG
from tests.paths import REPO


def test_every_whisper_signature_defaults_to_the_one_config():
    from speechmodel.models import frontends
    from speechmodel.models.whisper import whisper_audio_converter as wac
    from speechmodel.models.whisper import whisper_weights
    from speechmodel.models.whisper.whisper_encoder import WhisperEncoder
    from speechmodel.models.whisper.whisper_segment_embedder import WhisperSegmentEmbedder

    sizes = WHISPER_BASE_CONFIG.to_dict()
    assert sizes == {"num_layers": 6, "hidden_dim": 512, "num_heads": 8, "intermediate_dim": 2048,
                     "num_mels": 80, "max_positions": 1500}
    for function in (WhisperEncoder.__init__, WhisperSegmentEmbedder.__init__):
        params = inspect.signature(function).parameters
        assert {k: params[k].default for k in sizes} == sizes, function
    for function in (wac.WhisperAudioConverter.__init__, wac.whisper_mel_filters):
        assert inspect.signature(function).parameters["num_mels"].default == 80
    shapes = whisper_weights.encoder_variable_shapes(**sizes)
    assert shapes["conv1_kernel"] == (3, 80, 512) and shapes["positional_embedding"] == (1500, 512)
    entry = frontends.FRONT_ENDS["whisper_base"]
    assert (entry.num_blocks, entry.embedding_dim) == (6, 512)


def test_the_config_imports_no_tensorflow():
    code = ("import sys, speechmodel.models.whisper.whisper_config, speechmodel.models.frontends; "
            "print('tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == "False", out.stderr
