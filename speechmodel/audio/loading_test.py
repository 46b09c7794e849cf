import numpy as np
import pytest
import soundfile as sf

from speechmodel import audio
from speechmodel.tests.audio_files import bad_files, sine
from tests.paths import ravdess_files


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


def test_each_bad_input_gets_a_typed_error_naming_the_file(tmp_path):
    _, files = bad_files(tmp_path)
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


def test_stereo_real_ravdess_file_loads_as_mono():
    stereo = [f for f in ravdess_files() if sf.info(f).channels == 2]
    assert len(stereo) == 5  # as the corpus README says
    y = audio.load_audio(stereo[0])
    assert y.ndim == 1 and np.isfinite(y).all()
