import subprocess
import sys

import numpy as np
import pytest

from speechmodel import vad as V
from speechmodel.audio import load_audio
from tests.paths import ravdess_files

RATE = 16000


class Frames:
    """A detector stand-in: frames of ``hop`` samples."""

    name = "test"
    sample_rate = RATE

    def __init__(self, hop=160):
        self.hop = hop

    def frame_start(self, k):
        return k * self.hop


def run(segmenter, probs, chunk=7):
    out = []
    for i in range(0, len(probs), chunk):
        out += segmenter.add(probs[i : i + chunk])
    return out + segmenter.finish(len(probs) * segmenter.detector.hop)


def spans(regions, hop=160):
    return [(r.start // hop, r.end // hop) for r in regions]


@pytest.fixture(scope="module")
def speech():
    """Two real utterances separated by 1.5 s of silence, with 1 s of
    silence around: (signal, true speech spans in seconds)."""
    a, b = (load_audio(f) for f in ravdess_files("Actor_23/*.wav")[:2])
    gap = np.zeros(RATE, np.float32)
    y = np.concatenate([gap, a, np.zeros(int(1.5 * RATE), np.float32), b, gap])
    return y, len(a) / RATE, len(b) / RATE


def test_segmenter_hysteresis_min_speech_min_silence_and_pads():
    # Frames of 10 ms. Speech 100-200 with a 20-frame dip (shorter than the
    # 30-frame minimum silence: bridged), a 10-frame blip at 300 (shorter
    # than min_speech: dropped), speech 400-450 then 460-600 after a gap of
    # 10 frames (bridged), and 0.4 values that neither start nor end speech.
    p = np.zeros(700, np.float32)
    p[100:140] = 0.9
    p[140:160] = 0.1
    p[160:200] = 0.9
    p[300:310] = 0.9
    p[400:450] = 0.9
    p[450:460] = 0.4
    p[460:600] = 0.8
    seg = V.Segmenter(Frames(), threshold=0.5, min_speech=0.2, min_silence=0.3, pad=0.05, max_speech=30)
    regions = run(seg, p)
    assert spans(regions) == [(95, 205), (395, 605)]
    assert regions[0].speech == pytest.approx(80 / 100)
    assert regions[1].speech == pytest.approx(190 / 200)
    # The result does not depend on how the frames are fed.
    seg2 = V.Segmenter(Frames(), threshold=0.5, min_speech=0.2, min_silence=0.3, pad=0.05, max_speech=30)
    assert spans(run(seg2, p, chunk=700)) == spans(regions)


def test_segmenter_pads_never_overlap_and_stop_at_the_end():
    p = np.zeros(200, np.float32)
    p[10:50] = 0.9
    p[90:200] = 0.9  # 40 frames of silence between: pads of 30 would meet.
    seg = V.Segmenter(Frames(), min_speech=0.1, min_silence=0.3, pad=0.3, max_speech=30)
    regions = run(seg, p)
    assert spans(regions) == [(0, 70), (70, 200)]


def test_segmenter_cuts_long_speech_at_its_quietest_frame():
    p = np.full(1000, 0.9, np.float32)
    p[700] = 0.55  # The least speech-like frame of the second half.
    seg = V.Segmenter(Frames(), min_speech=0.1, min_silence=0.3, pad=0.0, max_speech=8.0)
    regions = run(seg, p)
    assert spans(regions)[0] == (0, 701)
    assert all(r.end - r.start <= 8.0 * RATE + 160 for r in regions)
    assert regions[-1].end == 1000 * 160
    starts_ends = spans(regions)
    assert all(a[1] == b[0] for a, b in zip(starts_ends, starts_ends[1:]))  # Contiguous.


def test_segmenter_rejects_bad_options():
    with pytest.raises(ValueError, match="threshold"):
        V.Segmenter(Frames(), threshold=1.5)
    with pytest.raises(ValueError, match="max_speech"):
        V.Segmenter(Frames(), max_speech=0.2, pad=0.1, min_speech=0.25)


@pytest.mark.parametrize("name", ["silero", "voicing"])
def test_detectors_find_real_utterances_and_not_silence(speech, name):
    y, len_a, len_b = speech
    regions = V.speech_regions(y, sample_rate=RATE, vad=name, block_seconds=0.7)
    assert regions, name
    found = [(r.start / RATE, r.end / RATE) for r in regions]
    a = (1.0, 1.0 + len_a)
    b = (a[1] + 1.5, a[1] + 1.5 + len_b)
    # RAVDESS clips hold ~1 s of room silence around the sentence: every
    # region lies inside a clip, and each clip holds at least one region
    # covering over a third of it.
    for s, e in found:
        assert (a[0] <= s and e <= a[1]) or (b[0] <= s and e <= b[1]), (name, found)
    for lo, hi in (a, b):
        inside = sum(e - s for s, e in found if lo <= s and e <= hi)
        assert inside > (hi - lo) / 3, (name, found)
    # Block size does not change the result.
    assert V.speech_regions(y, sample_rate=RATE, vad=name, block_seconds=60) == regions


def test_silero_ignores_noise_and_silence_and_runs_at_other_rates(speech):
    rng = np.random.default_rng(0)
    detector = V.SileroVAD(RATE)
    noise = 0.05 * rng.standard_normal(5 * RATE).astype(np.float32)
    assert V.frame_probabilities(noise, detector).max() < 0.5
    assert V.frame_probabilities(np.zeros(3 * RATE, np.float32), detector).max() < 0.5
    y, len_a, _ = speech
    probs16 = V.frame_probabilities(y[: int((1 + len_a) * RATE)], detector)
    assert probs16.max() > 0.9
    # 8 kHz runs natively (256-sample frames), 44.1 kHz through a resampler.
    from speechmodel.audio import resample

    for rate in (8000, 44100):
        other = V.SileroVAD(rate)
        z = resample(y[: int((1 + len_a) * RATE)], orig_sr=RATE, target_sr=rate)
        probs = V.frame_probabilities(z, other)
        assert probs.max() > 0.9, rate
        assert other.frame_start(len(probs)) <= len(z) + other.hop


def test_auto_falls_back_to_voicing_without_silero(monkeypatch, caplog):
    monkeypatch.setattr(V, "silero_model_path", lambda: (_ for _ in ()).throw(V.VADUnavailable("gone")))
    V._fallback_notice.cache_clear()
    with caplog.at_level("WARNING", logger="speechmodel.vad"):
        assert V.resolve_detector("auto") == "voicing"
        assert V.make_detector("auto", RATE).name == "voicing"
    # Said once, in one line, with the way to install it.
    notices = [r.getMessage() for r in caplog.records if r.name == "speechmodel.vad"]
    assert len(notices) == 1 and "pip install --no-deps silero-vad" in notices[0], notices
    with pytest.raises(V.VADUnavailable, match="gone"):
        V.make_detector("silero", RATE)
    with pytest.raises(V.VADUnavailable, match="gone"):
        V.resolve_detector("silero")
    with pytest.raises(ValueError, match="vad"):
        V.make_detector("webrtc", RATE)


def test_silero_model_is_found_without_importing_torch():
    code = (
        "import sys; from speechmodel import vad; import numpy as np; "
        "d = vad.SileroVAD(16000); d.add(np.zeros(16000, np.float32)); "
        "print(vad.silero_model_path()); "
        "assert 'torch' not in sys.modules and 'silero_vad' not in sys.modules"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("silero_vad.onnx")
