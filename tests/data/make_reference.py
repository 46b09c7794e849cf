"""Rebuilds the committed librosa reference arrays used by the feature tests.

    python tests/data/make_reference.py

ravdess_logmel_ref.npy: librosa log-mel (64 bands, 25 ms Hann window, 10 ms
hop, n_fft 512, 20-8000 Hz, Slaney, power_to_db(ref=1, amin=1e-10,
top_db=80)) of the first 2 s of Actor_01/03-01-05-02-01-01-01.wav (angry,
strong), as (frames, 64) float32, then its librosa deltas (width 9, orders 1
and 2): shape (201, 64, 3). librosa 0.11.0.
"""

import sys
from pathlib import Path

import librosa
import numpy as np
import soundfile as sf

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from tests.paths import RAVDESS  # noqa: E402

SOURCE = RAVDESS / "Actor_01" / "03-01-05-02-01-01-01.wav"


def reference(y, sr=16000):
    S = librosa.feature.melspectrogram(
        y=y, sr=sr, n_fft=512, hop_length=160, win_length=400, window="hann",
        center=True, pad_mode="constant", power=2.0, n_mels=64, fmin=20.0,
        fmax=8000.0, htk=False, norm="slaney",
    )
    L = librosa.power_to_db(S, ref=1.0, amin=1e-10, top_db=80.0)
    return np.stack(
        [L, librosa.feature.delta(L, width=9, order=1), librosa.feature.delta(L, width=9, order=2)],
        axis=-1,
    ).transpose(1, 0, 2).astype(np.float32)


if __name__ == "__main__":
    y, sr = sf.read(SOURCE, dtype="float32")
    np.save(HERE / "ravdess_logmel_ref.npy", reference(y[: 2 * sr], sr))
    print("wrote", HERE / "ravdess_logmel_ref.npy")
