import numpy as np
import soundfile as sf

from speechmodel import audio
from speechmodel.tests.audio_files import bad_files, sine
from tests.paths import ravdess_files


def test_graph_decoders_match_load_audio(tmp_path):
    import tensorflow as tf

    real = ravdess_files("Actor_01/*.wav")[:2]
    stereo = tmp_path / "stereo16.wav"
    sf.write(stereo, sine(700, 16000, channels=2), 16000, subtype="PCM_16")
    flac16 = tmp_path / "a.flac"
    sf.write(flac16, sine(700, 16000, channels=2), 16000, format="FLAC", subtype="PCM_16")
    flac24 = tmp_path / "b.flac"
    sf.write(flac24, sine(900, 16000), 16000, format="FLAC", subtype="PCM_24")
    resampled = tmp_path / "c.wav"
    sf.write(resampled, sine(700, 8000), 8000, subtype="PCM_16")
    expected = {
        real[0]: "wav",
        real[1]: "wav",
        str(stereo): "wav",
        str(flac16): "flac16",
        str(flac24): "flac24",
        str(resampled): "python",
    }
    for path, decoder in expected.items():
        assert audio.graph_decoder(path) == decoder, path
        code = tf.constant(audio.GRAPH_DECODERS.index(decoder))
        waveform, error = audio.tf_load_audio(tf.constant(path), decoder=code)
        assert error.numpy() == b""
        np.testing.assert_allclose(
            waveform.numpy(), audio.load_audio(path), atol=1e-6, err_msg=path
        )


def test_tf_load_audio_reports_instead_of_raising(tmp_path):
    import tensorflow as tf

    _, files = bad_files(tmp_path)
    for kind, path in files.items():
        waveform, error = audio.tf_load_audio(tf.constant(str(path)))
        assert waveform.shape == (0,)
        assert error.numpy().decode().startswith(str(path) + ": ")
