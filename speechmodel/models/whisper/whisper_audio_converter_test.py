import librosa
import numpy as np
import pytest
import scipy.signal

from speechmodel.audio import load_audio
from speechmodel.models.whisper.whisper_audio_converter import WhisperAudioConverter
from speechmodel.tests.test_case import TestCase
from tests.paths import ravdess_files

# float32 TensorFlow against a float64 NumPy reference, on values of
# (log10 + 4) / 4: the measured gap on RAVDESS is ~2e-5.
ATOL = 1e-4


def whisper_log_mel_reference(audio, num_frames=None):
    """OpenAI Whisper's ``log_mel_spectrogram(audio, padding=N_SAMPLES)`` in
    float64 NumPy, then its first ``len(audio) // 160`` frames (what
    ``transcribe`` keeps): 30 s of zeros appended, torch.stft(n_fft=400,
    hop 160, hann periodic, center=True, reflect), last frame dropped,
    |.|^2, Slaney mel filters, log10 clamp 1e-10, max - 8, (x + 4) / 4."""
    padded = np.pad(np.asarray(audio, np.float64), (0, 480000))
    x = np.pad(padded, (200, 200), mode="reflect")
    count = 1 + (len(x) - 400) // 160
    index = np.arange(400)[np.newaxis] + 160 * np.arange(count)[:, np.newaxis]
    window = scipy.signal.get_window("hann", 400, fftbins=True)
    power = np.abs(np.fft.rfft(x[index] * window, axis=-1)[:-1]) ** 2
    filters = librosa.filters.mel(sr=16000, n_fft=400, n_mels=80, dtype=np.float64)
    log_spec = np.log10(np.maximum(power @ filters.T, 1e-10))
    log_spec = np.maximum(log_spec, log_spec.max() - 8.0)
    log_spec = (log_spec + 4.0) / 4.0
    return log_spec[: len(audio) // 160 if num_frames is None else num_frames]


def _batch(waves, fill=0.0):
    batch = np.full((len(waves), max(map(len, waves))), fill, np.float32)
    for i, w in enumerate(waves):
        batch[i, : len(w)] = w
    return batch, np.array([len(w) for w in waves], np.int32)


class WhisperAudioConverterTest(TestCase):
    def test_equals_whisper_on_real_ravdess_clips(self):
        files = ravdess_files("Actor_0[3-4]/*.wav")[::23][:4]
        waves = [load_audio(f) for f in files]
        waves.append(waves[0][:16037])  # an odd length, not a multiple of 160
        batch, lengths = _batch(waves)
        mel, frame_lengths = WhisperAudioConverter()(batch, lengths)
        mel, frame_lengths = mel.numpy(), frame_lengths.numpy()
        self.assertEqual(frame_lengths.tolist(), [len(w) // 160 for w in waves])
        self.assertEqual(mel.shape, (len(waves), frame_lengths.max(), 80))
        for i, w in enumerate(waves):
            n = frame_lengths[i]
            np.testing.assert_allclose(
                mel[i, :n], whisper_log_mel_reference(w), atol=ATOL, rtol=0, err_msg=files[min(i, 3)]
            )
            self.assertTrue(np.all(mel[i, n:] == 0.0))

    def test_batched_equals_alone_whatever_the_padding_holds(self):
        rng = np.random.RandomState(0)
        waves = [
            rng.standard_normal(n).astype(np.float32) * s
            for n, s in ((9000, 0.1), (4321, 0.5), (170, 0.2), (40, 1.0), (16000, 1e-3))
        ]
        # Garbage past each length: it must be read as zeros.
        batch, lengths = _batch(waves, fill=7.0)
        layer = WhisperAudioConverter()
        mel, frame_lengths = layer(batch, lengths)
        self.assertEqual(frame_lengths.numpy().tolist(), [56, 27, 1, 1, 100])
        for i, w in enumerate(waves):
            alone, n = layer(w[np.newaxis], None)
            self.assertEqual(int(n[0]), int(frame_lengths[i]))
            np.testing.assert_allclose(mel[i, : int(n[0])], alone[0], atol=1e-6, rtol=0)
            self.assertTrue(np.all(mel.numpy()[i, int(n[0]) :] == 0.0))
            # Tiny inputs (< 160 samples): one frame, Whisper's first frame
            # of the zero-padded audio.
            np.testing.assert_allclose(
                alone[0], whisper_log_mel_reference(w, num_frames=int(n[0])), atol=ATOL, rtol=0
            )

    def test_silence_is_finite(self):
        mel, n = WhisperAudioConverter()(np.zeros((1, 3200), np.float32))
        # log10(1e-10) = -10 -> (-10 + 4) / 4.
        np.testing.assert_allclose(mel[0], np.full((20, 80), -1.5), atol=1e-6)
        self.assertEqual(n.numpy().tolist(), [20])

    def test_layer(self):
        self.run_layer_test(
            WhisperAudioConverter,
            {"num_mels": 80},
            np.zeros((2, 3200), np.float32),
            [(2, 20, 80), (2,)],
            call_kwargs={"lengths": np.array([3200, 1600], np.int32)},
            expected_output_dtype=["float32", "int32"],
            run_training_check=False,
        )
        self.run_docstring_test(WhisperAudioConverter)
        with pytest.raises(ValueError, match="Received: num_mels=0"):
            WhisperAudioConverter(num_mels=0)
