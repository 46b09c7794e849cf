import numpy as np
import pytest
import soundfile as sf

from speechmodel import audio
from tests.paths import ravdess_files


def sine(freq, sr, seconds=1.0, channels=1, amplitude=0.5):
    t = np.arange(int(sr * seconds)) / sr
    y = amplitude * np.sin(2 * np.pi * freq * t)
    if channels > 1:
        y = np.stack([y * (c + 1) / channels for c in range(channels)], axis=1)
    return y.astype(np.float64)


def peak_hz(y, sr):
    spectrum = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    return np.argmax(spectrum) * sr / len(y)


@pytest.mark.parametrize(
    "fmt, subtype, ext",
    [
        ("WAV", "PCM_U8", "wav"),
        ("WAV", "PCM_16", "wav"),
        ("WAV", "PCM_24", "wav"),
        ("WAV", "PCM_32", "wav"),
        ("WAV", "FLOAT", "wav"),
        ("WAV", "DOUBLE", "wav"),
        ("FLAC", "PCM_16", "flac"),
        ("FLAC", "PCM_24", "flac"),
        ("OGG", "VORBIS", "ogg"),
        ("AIFF", "PCM_16", "aiff"),
    ],
)
def test_formats_load_as_mono_float32_at_16k(tmp_path, fmt, subtype, ext):
    path = tmp_path / f"tone.{ext}"
    sf.write(path, sine(1000, 44100, channels=2), 44100, format=fmt, subtype=subtype)
    y = audio.load_audio(path)
    assert y.dtype == np.float32 and y.ndim == 1
    assert abs(len(y) - 16000) <= 1
    # Mono is the mean of the channels (amplitudes 0.25 and 0.5 -> 0.375).
    tolerance = 0.05 if subtype in ("PCM_U8", "VORBIS") else 0.01
    assert abs(np.abs(y[2000:-2000]).max() - 0.375) < tolerance
    assert abs(peak_hz(y, 16000) - 1000) < 2


@pytest.mark.parametrize("sr", [8000, 22050, 44100, 48000, 96000])
def test_resampling_keeps_the_tone_and_removes_what_is_above_nyquist(tmp_path, sr):
    path = tmp_path / "x.wav"
    y = sine(440, sr, seconds=2)
    if sr > 16000:
        y = y + sine(min(sr / 2 - 1000, 11000), sr, seconds=2, amplitude=0.3)
    sf.write(path, y, sr, subtype="FLOAT")
    out = audio.load_audio(path)
    assert abs(len(out) - 32000) <= 2
    assert abs(peak_hz(out, 16000) - 440) < 1
    # Band-limited: no alias of the >8 kHz tone (plain decimation would fold
    # it back into the band); what is left is the 440 Hz tone alone.
    residual = out[4000:-4000] - sine(440, 16000, seconds=2)[4000:-4000]
    assert np.sqrt(np.mean(residual**2)) < 0.01


def test_extension_that_lies_is_read_by_content(tmp_path):
    path = tmp_path / "really_flac.wav"
    sf.write(path, sine(1000, 16000), 16000, format="FLAC")
    y = audio.load_audio(path)
    assert len(y) == 16000
    assert audio.read_info(path).format == "FLAC"


def test_silence_is_valid(tmp_path):
    path = tmp_path / "silence.wav"
    sf.write(path, np.zeros(8000), 16000, subtype="PCM_16")
    y = audio.load_audio(path)
    assert y.shape == (8000,) and not y.any()


def test_stereo_without_mixing(tmp_path):
    path = tmp_path / "st.wav"
    sf.write(path, sine(500, 48000, channels=2), 48000, subtype="PCM_16")
    y = audio.load_audio(path, mono=False)
    assert y.shape[1] == 2 and abs(y.shape[0] - 16000) <= 1


def _bad_files(tmp_path):
    good = tmp_path / "good.wav"
    sf.write(good, sine(300, 16000), 16000, subtype="PCM_16")
    data = good.read_bytes()
    files = {
        "missing": tmp_path / "missing.wav",
        "empty": tmp_path / "empty.wav",
        "not_audio": tmp_path / "notes.wav",
        "truncated": tmp_path / "truncated.wav",
        "no_samples": tmp_path / "no_samples.wav",
        "non_finite": tmp_path / "nan.wav",
    }
    files["empty"].write_bytes(b"")
    files["not_audio"].write_text("this is a text file with a .wav name\n" * 20)
    files["truncated"].write_bytes(data[: len(data) // 2])
    sf.write(files["no_samples"], np.zeros(0), 16000, subtype="PCM_16")
    y = sine(300, 16000)
    y[100] = np.nan
    sf.write(files["non_finite"], y, 16000, subtype="FLOAT")
    return good, files


def test_each_bad_input_gets_a_typed_error_naming_the_file(tmp_path):
    _, files = _bad_files(tmp_path)
    header_only = tmp_path / "header_only.wav"
    header_only.write_bytes(files["truncated"].read_bytes()[:30])
    for kind, path in files.items():
        with pytest.raises(audio.AudioError) as info:
            audio.load_audio(path)
        assert info.value.kind == kind, (kind, info.value)
        assert str(path) in str(info.value)
        assert info.value.path == str(path)
    with pytest.raises(audio.AudioError) as info:
        audio.load_audio(header_only)
    assert info.value.kind in ("truncated", "corrupt")
    with pytest.raises(audio.AudioError, match="directory"):
        audio.load_audio(tmp_path)


def test_truncated_flac_is_reported(tmp_path):
    path = tmp_path / "t.flac"
    sf.write(path, np.random.default_rng(0).normal(0, 0.1, 48000), 16000, format="FLAC")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert audio.graph_decoder(path) == "python"
    with pytest.raises(audio.AudioError) as info:
        audio.load_audio(path)
    assert info.value.kind in ("truncated", "corrupt")


def test_iter_blocks_streams_the_same_audio(tmp_path):
    path = tmp_path / "long.wav"
    y = np.random.default_rng(1).normal(0, 0.1, 44100 * 7)
    sf.write(path, y, 44100, subtype="FLOAT")
    whole = audio.load_audio(path)
    blocks = list(audio.iter_blocks(path, block_seconds=2.0))
    assert len(blocks) >= 3
    streamed = np.concatenate(blocks)
    assert abs(len(streamed) - len(whole)) <= 2
    n = min(len(streamed), len(whole))
    np.testing.assert_allclose(streamed[500 : n - 500], whole[500 : n - 500], atol=1e-4)


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

    _, files = _bad_files(tmp_path)
    for kind, path in files.items():
        waveform, error = audio.tf_load_audio(tf.constant(str(path)))
        assert waveform.shape == (0,)
        assert error.numpy().decode().startswith(str(path) + ": ")


def test_stereo_real_ravdess_file_loads_as_mono():
    stereo = [f for f in ravdess_files() if sf.info(f).channels == 2]
    assert len(stereo) == 5  # as the corpus README says
    y = audio.load_audio(stereo[0])
    assert y.ndim == 1 and np.isfinite(y).all()
