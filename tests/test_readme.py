"""The README's commands, run as a user types them.

Every indented command line of README.md and docs/*.md that starts with
``python`` is
found here and either run exactly as written (from a folder laid out like a
checkout, with the files the README names: ``samples/``, ``files/*.wav``,
``recordings/``, ``long_meeting.flac``, ``clip.wav``, ``interview.flac``,
``data/ravdess``, ``A`` and ``B``), or, for the training commands, run as
written plus ``--dry_run`` (every check train.py makes, nothing trained:
a full training is a benchmark, not a test). The few that cannot run here
are listed in ``NOT_RUN`` with the test that covers them instead; a new
README command that is in neither list fails the test.
"""

import os
import shlex
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from tests.paths import EMOSPEECH, NEMO, ONNX_CACHE, RAVDESS, REPO, ravdess_files, require

# slow: runs every documented command as a user types it (left out by -m "not slow").
pytestmark = pytest.mark.slow

# Commands that cannot run in a test, and what covers them.
NOT_RUN = {
    "python -m pytest -q": "this suite",
    "python infer.py --model runs/.../ clip.wav": "tests/test_final_model.py (a run directory as --model)",
    "python infer.py --mic --segment vad": "tests/test_stream_cli.py (no microphone in CI)",
    "python -m speechmodel.serve": "tests/test_serve_http.py, tests/test_serve_browser.py",
    "python -m speechmodel.datasets.download ravdess --to data/ravdess": "speechmodel/datasets/download/ (no network)",
    # docs/batch.md: the package's own module (not a script beside the checkout's root).
    "python -m speechmodel.batch samples/ --output batch_results/": "speechmodel/batch/runner_test.py (the same run)",
    "python -m speechmodel.batch samples/ --output batch_results/ --engine ray --workers 2":
        "speechmodel/batch/engines_test.py (Ray with 2 workers)",
    "python -m speechmodel.batch samples/ --output embeddings/ --embed":
        "speechmodel/batch/runner_test.py (--embed read back by training)",
}
TRAINING = "python train.py"


DOCUMENTS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def readme_commands():
    """The ``python`` commands of the README and of docs/*.md: indented
    lines, each part of a ``&&`` chain that starts with ``python``."""
    commands = []
    for document in DOCUMENTS:
        for line in document.read_text(encoding="utf-8").splitlines():
            if not line.startswith("    ") or line.startswith("     "):
                continue
            for part in line.strip().split("  #")[0].split(" && "):
                if part.strip().startswith("python "):
                    commands.append(part.strip())
    return list(dict.fromkeys(commands))


def test_the_front_door_installs_and_runs_in_one_command_and_tests_in_one():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    assert "    pip install -r requirements.txt && python infer.py samples/\n" in text
    assert "    bash .ci/run\n" in text and "python -m pytest -q" in (REPO / ".ci" / "run").read_text()
    assert len(text.splitlines()) <= 150


@pytest.fixture(scope="module")
def checkout(tmp_path_factory):
    """A folder laid out as the README assumes: the scripts and packages of
    the checkout, and the audio files its examples name."""
    require(RAVDESS)
    require(NEMO)
    root = tmp_path_factory.mktemp("checkout")
    # The scripts, configs and samples; not the packages: the scripts import
    # them from beside their real path, and the shipped models are found by
    # name in the package, never in the working directory.
    for name in ("infer.py", "train.py", "serve.py", "configs", "samples"):
        os.symlink(REPO / name, root / name)
    (root / "data").mkdir()
    os.symlink(RAVDESS, root / "data" / "ravdess")
    os.symlink(NEMO, root / "data" / "nemo")
    if EMOSPEECH.exists():
        os.symlink(EMOSPEECH, root / "data" / "emospeech")
    os.symlink(RAVDESS, root / "A")
    os.symlink(NEMO, root / "B")
    clips = ravdess_files("Actor_24/*.wav")
    (root / "files").mkdir()
    (root / "recordings" / "day1").mkdir(parents=True)
    for clip in clips[:2]:
        shutil.copy(clip, root / "files")
    shutil.copy(clips[2], root / "recordings" / "day1")
    shutil.copy(clips[3], root / "clip.wav")
    from speechmodel.audio import load_audio

    # Your own recordings: my_recordings/<speaker>/<emotion>/*.wav.
    for actor in ("01", "02", "03", "04", "05", "06"):
        for code, emotion in (("01", "neutral"), ("05", "angry")):
            (root / "my_recordings" / f"spk{actor}" / emotion).mkdir(parents=True)
            for f in sorted(RAVDESS.glob(f"Actor_{actor}/03-01-{code}-0[12]-01-0[12]-{actor}.wav")):
                os.symlink(f, root / "my_recordings" / f"spk{actor}" / emotion / f.name)
    y = np.concatenate([np.concatenate([load_audio(c), np.zeros(8000, np.float32)]) for c in clips[4:9]])
    sf.write(root / "long_meeting.flac", y, 16000)
    sf.write(root / "interview.flac", y, 16000)
    return root


def run(command, cwd):
    # As a user runs them: the runtime they choose (auto unless the command
    # says), not the suite's Keras default (conftest.py).
    env = {k: v for k, v in os.environ.items()
           if k not in ("TF_CPP_MIN_LOG_LEVEL", "SER_DATA_DIR", "SPEECHMODEL_RUNTIME")}
    # ONNX conversions of the shipped models come from the tests' own
    # lasting cache (speechmodel/inference/onnx_backend_test.py builds it).
    env["SPEECHMODEL_CACHE"] = ONNX_CACHE
    args = shlex.split(command)
    args[0] = sys.executable
    # The shell expands globs; so does this.
    expanded = []
    for a in args:
        if any(ch in a for ch in "*?["):
            import glob

            matches = sorted(glob.glob(a, root_dir=cwd))
            expanded += matches or [a]
        else:
            expanded.append(a)
    return subprocess.run(expanded, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)


def test_every_readme_command_is_known():
    for command in readme_commands():
        assert command in NOT_RUN or command.startswith(("python infer.py", TRAINING)), command


@pytest.mark.parametrize(
    "command", [c for c in readme_commands() if c.startswith("python infer.py") and c not in NOT_RUN]
)
def test_readme_infer_command_runs_as_written(command, checkout, tmp_path):
    result = run(command, checkout)
    assert result.returncode == 0, (command, result.stderr)
    assert "Traceback" not in result.stderr
    assert result.stdout.strip(), command
    assert not (checkout / "speechmodel").exists()  # the models came from the package
    if "--plot plots/" in command:
        assert any(p.suffix == ".png" for p in (checkout / "plots").iterdir())


@pytest.mark.parametrize("command", [c for c in readme_commands() if c.startswith(TRAINING)])
def test_readme_train_command_passes_every_check(command, checkout):
    result = run(command + " --dry_run", checkout)
    assert result.returncode == 0, (command, result.stderr)
    assert "all checks passed" in result.stdout, result.stdout
    assert not (checkout / "runs").exists()  # a dry run writes nothing
    # The flag spellings are one flag.
    if "--data_dir" in command:
        dashed = run(command.replace("--data_dir", "--data-dir") + " --dry_run", checkout)
        assert dashed.returncode == 0 and dashed.stdout == result.stdout
