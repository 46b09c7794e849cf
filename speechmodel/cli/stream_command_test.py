import io

import numpy as np
import pytest
import soundfile as sf

from speechmodel import inference as I
from speechmodel.audio_sources_test import FakeSoundDevice
from speechmodel.cli import stream_command
from speechmodel.inference.streaming_test import CLASSES, RATE, audio, model  # noqa: F401 (fixtures)


def test_microphone_at_the_device_rate_gives_the_file_results(model, audio, tmp_path):
    from speechmodel.audio import resample

    y48 = resample(audio[: 9 * RATE], orig_sr=RATE, target_sr=48000)
    fake = FakeSoundDevice(y48, rate=48000)
    out, err = io.StringIO(), io.StringIO()
    status = stream_command.run_stream(model, source_args={"mic": True, "device": "USB", "sounddevice": fake},
                          output_format="jsonl", max_seconds=8.0, stdout=out, stderr=err)
    assert status == 0, err.getvalue()
    assert fake.opened == [48000]  # The device refused 16 kHz: resampled here.
    import json

    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert lines[0]["type"] == "stream" and "Fake USB mic" in lines[0]["source"]
    windows = [x for x in lines if x["type"] == "window"]
    assert [(w["start"], w["end"]) for w in windows] == [(0, 4), (2, 6), (4, 8)]
    assert lines[-1]["type"] == "summary" and lines[-1]["duration"] == pytest.approx(8.0)
    # The same 8 s given as a file (resampled the same way) give the same windows.
    path = tmp_path / "mic.wav"
    sf.write(path, y48[: 8 * 48000], 48000, subtype="FLOAT")
    [expected] = I.Predictor(model, max_utterance=1.0).predict([str(path)]).predictions
    for w, e in zip(windows, expected.timeline):
        assert w["voiced"] == pytest.approx(e.voiced, abs=0.05)
        for c in CLASSES:
            assert w["probabilities"][c] == pytest.approx(float(e.probabilities[CLASSES.index(c)]), abs=1e-3)


def test_a_missing_microphone_is_one_line(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "sounddevice", None)
    err = io.StringIO()
    assert stream_command.run_stream(_FakeModel(), source_args={"mic": True}, stderr=err) == 2
    [line] = err.getvalue().splitlines()
    assert line.startswith("infer.py: error: no microphone")


def test_same_speaker_is_refused_for_a_stream():
    err = io.StringIO()
    status = stream_command.run(
        ["-"], model=None, default_model=None, list_files=(), output_format="table", output=None, top_k=1,
        attention=False, window=4.0, hop=2.0, max_utterance=20.0, plot_dir=None, batch_size=32,
        segment="windows", vad="auto", stream={}, same_speaker=True, stdout=io.StringIO(), stderr=err,
    )
    assert status == 2 and "--same_speaker is for files" in err.getvalue()


class _FakeModel:
    sample_rate = RATE
    class_names = CLASSES

    def describe(self):
        return {}

    def predict_waveforms(self, waveforms, lengths, *, attention):
        raise AssertionError("not reached")
