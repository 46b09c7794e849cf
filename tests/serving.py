"""Starting ``python -m speechmodel.serve`` for the tests: on 127.0.0.1, a
free port chosen by the server (it prints its address), its temporary
files in a directory of the test's."""

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def tiny_model(path, classes=("neutral", "happy", "sad"), seed=3):
    """A random-weight EmotionRecognizer saved at ``path``."""
    import keras

    from speechmodel.models.recognizer import EmotionRecognizer
    from speechmodel.models.speech_model import SpeechModel

    keras.utils.set_random_seed(seed)
    recognizer = EmotionRecognizer(
        SpeechModel(len(classes), backbone="alexnet_gap", lstm_units=8, attention_units=8, dense_units=[8]),
        class_names=list(classes),
    )
    recognizer.save(path)
    return path


@contextlib.contextmanager
def running_server(model, workdir, *args, startup_timeout=240):
    """Yields ``(base_url, process, tmpdir)``; the server runs in ``workdir/cwd``
    with ``TMPDIR=workdir/tmp``. Stopped with SIGTERM (then killed)."""
    cwd, tmp = Path(workdir) / "cwd", Path(workdir) / "tmp"
    cwd.mkdir(parents=True, exist_ok=True)
    tmp.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env.update(TMPDIR=str(tmp), PYTHONPATH=str(REPO) + os.pathsep + env.get("PYTHONPATH", ""))
    process = subprocess.Popen(
        [sys.executable, "-m", "speechmodel.serve", "--model", str(model), "--port", "0", *map(str, args)],
        cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    errors = []
    threading.Thread(target=lambda: errors.extend(process.stderr), daemon=True).start()
    found = []

    def read_address():
        for line in process.stdout:
            match = re.search(r"on (http://127\.0\.0\.1:\d+)", line)
            if match:
                found.append(match.group(1))
                return

    reader = threading.Thread(target=read_address, daemon=True)
    reader.start()
    reader.join(startup_timeout)
    try:
        if not found:
            process.kill()
            process.wait(10)
            raise RuntimeError("the server did not start:\n" + "".join(errors[-30:]))
        yield found[0], process, tmp
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        time.sleep(0.1)
        assert "Traceback" not in "".join(errors), "".join(errors[-40:])
