"""Audio files for the tests of ``speechmodel.audio`` (not a test module)."""

import numpy as np
import soundfile as sf


def sine(freq, sr, seconds=1.0, channels=1, amplitude=0.5):
    t = np.arange(int(sr * seconds)) / sr
    y = amplitude * np.sin(2 * np.pi * freq * t)
    if channels > 1:
        y = np.stack([y * (c + 1) / channels for c in range(channels)], axis=1)
    return y.astype(np.float64)


def bad_files(tmp_path):
    """A good 16 kHz WAV and one file of each ``AudioError`` kind that a
    file can have: ``(good, {kind: path})``."""
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
