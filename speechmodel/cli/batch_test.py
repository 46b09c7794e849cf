"""The command line's usage errors: one line, exit 2, nothing written.
(Runs: speechmodel/batch/runner_test.py.)"""

import subprocess
import sys

from tests.paths import REPO, ravdess_files


def run(*args, cwd=REPO):
    return subprocess.run([sys.executable, "-m", "speechmodel.batch", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=600)


def test_a_folder_of_other_files_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    result = run(ravdess_files()[0], "--output", str(tmp_path), "--model", "fast")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("speechmodel-batch: error: --output ") and "not a batch run's" in lines[-1]
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_workers_need_the_ray_engine(tmp_path):
    result = run(ravdess_files()[0], "--output", str(tmp_path / "out"), "--workers", "2")
    assert result.returncode == 2 and "--workers and --address are for --engine ray" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "out").exists()
