import io
import os

import pytest

from speechmodel.cli import infer_command
from tests.paths import ravdess_files, save_tiny_model


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    return str(save_tiny_model(tmp_path_factory.mktemp("model") / "tiny.keras", ["angry", "happy", "sad"], seed=7))


def test_run_exit_statuses(model_path, tmp_path):
    clip = ravdess_files("Actor_14/*.wav")[0]

    def run(inputs, **kwargs):
        out, err = io.StringIO(), io.StringIO()
        status = infer_command.run(inputs, stdout=out, stderr=err, **kwargs)
        return status, out.getvalue(), err.getvalue()

    status, out, err = run([clip], model=model_path, output_format="csv", output=str(tmp_path / "o" / "r.csv"))
    assert status == 0 and out == "" and err == ""
    assert open(tmp_path / "o" / "r.csv").read().startswith("file,kind,start,end,duration,label")
    status, out, err = run([clip, str(tmp_path / "missing.wav")], model=model_path)
    assert status == 1 and clip in out
    assert err.splitlines()[0] == f"infer.py: skipped {tmp_path / 'missing.wav'}: file not found"
    assert len(err.splitlines()) == 2  # The file's line and the summary.
    for inputs, kwargs, message in [
        ([], {"model": model_path}, "no audio files to analyse"),
        ([str(tmp_path / "missing.wav")], {"model": model_path}, "no audio files to analyse"),
        ([clip], {"model": str(tmp_path / "nope.keras")}, "model file not found"),
        ([clip], {"default_model": str(tmp_path / "models" / "ravdess_default.keras")}, "default model"),
        ([clip], {"model": model_path, "top_k": 4}, "larger than the model's 3 classes"),
        ([clip], {"model": model_path, "output_format": "xml"}, "--format must be one of"),
        ([clip], {"model": model_path, "hop": 9.0}, "Received: hop=9.0"),
        ([clip], {"model": model_path, "same_speaker": True},
         "needs a model trained with speaker normalisation"),
    ]:
        status, out, err = run(inputs, **kwargs)
        assert status == 2 and message in err and out == "", (inputs, kwargs, err)


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_on_a_terminal_only(model_path):
    clips = ravdess_files("Actor_14/*.wav")[:3]
    piped = io.StringIO()
    assert infer_command.run(clips, model=model_path, stdout=io.StringIO(), stderr=piped) == 0
    assert piped.getvalue() == ""  # redirected: one line per bad file, nothing else
    terminal = _Terminal()
    assert infer_command.run(clips, model=model_path, stdout=io.StringIO(), stderr=terminal) == 0
    assert terminal.getvalue().splitlines()[-1].startswith("analysing: 3/3 files done (")


def test_check_output_refuses_inputs_audio_and_directories(tmp_path):
    clip = tmp_path / "clip.wav"
    clip.write_bytes(b"RIFF....WAVE")
    listing = tmp_path / "list.txt"
    listing.write_text("clip.wav\n")
    os.symlink(clip, tmp_path / "link.csv")
    assert "is a directory" in infer_command.check_output(str(tmp_path))
    assert "is one of the inputs" in infer_command.check_output(str(tmp_path / "link.csv"), inputs=[str(clip)])
    assert "is a --list file" in infer_command.check_output(str(listing), list_files=[str(listing)])
    sound = tmp_path / "other.flac"
    sound.write_bytes(b"not even audio")  # An audio ending is enough.
    assert "existing audio file" in infer_command.check_output(str(sound))
    disguised = tmp_path / "results.csv"
    disguised.write_bytes(b"fLaC" + bytes(10))  # Audio by content.
    assert "existing audio file" in infer_command.check_output(str(disguised))
    sun = tmp_path / "results.txt"
    sun.write_bytes(b".snd" + bytes(20))  # Any container the audio reader knows.
    assert "existing audio file" in infer_command.check_output(str(sun))
    # Writable: a new file in a new folder (created now), or an old results file.
    assert infer_command.check_output(str(tmp_path / "new" / "r.csv")) is None
    assert (tmp_path / "new").is_dir()
    (tmp_path / "old.csv").write_text("a,b\n")
    assert infer_command.check_output(str(tmp_path / "old.csv")) is None


def test_write_output_writes_a_device_and_replaces_a_file(tmp_path):
    out = tmp_path / "r.txt"
    out.write_text("old\n")
    infer_command.write_output("new\n", str(out))
    assert out.read_text() == "new\n" and os.listdir(tmp_path) == ["r.txt"]
    infer_command.write_output("to a device\n", os.devnull)  # Written to, never replaced.
    assert os.path.exists(os.devnull) and not os.path.isfile(os.devnull)


def test_an_output_that_cannot_be_written_is_a_usage_error_as_documented(model_path):
    from speechmodel.cli import infer as infer_flags

    clip = ravdess_files("Actor_14/*.wav")[0]
    out, err = io.StringIO(), io.StringIO()
    # /proc/version exists, but no file can be created beside it (not even by root).
    status = infer_command.run([clip], model=model_path, output="/proc/version", stdout=out, stderr=err)
    assert status == infer_command.EXIT_USAGE and out.getvalue() == ""
    [line] = err.getvalue().splitlines()
    assert line.startswith("infer.py: error: cannot write --output: no file can be created in /proc (")
    # The same rule as --help states it.
    assert "an --output that cannot be written (checked before any work)" in infer_flags.__doc__.split("  3")[0]
