"""Progress a person can follow: training runs and long loops over files.

Used by ``speechmodel.training`` (folds, stages, epochs, feature and
embedding extraction, grid search); ``CountProgress`` serves any loop over
many files (batch inference). It imports only Keras (its ``Progbar``).

``RunProgress`` counts a run's work in epochs (every fold, every stage, the
final model), measures the seconds an epoch takes in each kind of stage and
from them estimates the time left for the whole run. ``EpochProgress`` is
the Keras callback that reports one fit: an in-epoch bar on a terminal
(``keras.utils.Progbar``), one line per epoch (to the run's log, and to
stdout), a line when a fit resumes from its backup and a line when early
stopping ends it. ``CountProgress`` reports a loop over files or
candidates (feature and embedding extraction, grid search, batch
inference) the same way.

The run's lines go through one function, ``say(message)`` (the runner's:
``train.log`` and stdout); the bar is drawn only when ``bar=True`` (stdout
is a terminal), so logs and pipes get whole lines only.
"""

import sys
import time

import keras

from speechmodel.errors import is_number


def format_seconds(seconds):
    """``3725 -> "1h02m"``, ``125 -> "2m05s"``, ``7.2 -> "7s"``."""
    seconds = max(0, int(round(float(seconds))))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


class RunProgress:
    """Elapsed time and the estimated time left of a whole run.

    Work is planned as fits (``plan(key, epochs, kind)``: a fold's stage 1,
    its head, the final model...). Each finished epoch is recorded with its
    seconds (``epoch_done``); a fit that stops early or was finished in an
    earlier attempt drops its remaining epochs (``finish``). The time left
    is the planned epochs still to run, each at the mean seconds per epoch
    measured for its ``kind`` in this run (the mean over every kind while a
    kind has no epoch yet); ``None`` until an epoch has been measured.

    Args:
        clock: a function returning seconds (``time.monotonic``).
    """

    def __init__(self, *, clock=time.monotonic):
        self.clock = clock
        self.start = clock()
        self.fits = {}  # key -> {"epochs", "done", "kind"}
        self.measured = {}  # kind -> [seconds, epochs]

    def plan(self, key, epochs, kind="epoch"):
        fit = self.fits.setdefault(key, {"epochs": 0, "done": 0, "kind": kind})
        fit.update(epochs=int(epochs), kind=kind)

    def resume(self, key, done):
        """``done`` epochs of fit ``key`` were committed by an earlier attempt."""
        if key in self.fits:
            self.fits[key]["done"] = max(self.fits[key]["done"], int(done))

    def epoch_done(self, key, seconds):
        fit = self.fits.setdefault(key, {"epochs": 1, "done": 0, "kind": "epoch"})
        fit["done"] += 1
        total = self.measured.setdefault(fit["kind"], [0.0, 0])
        total[0] += float(seconds)
        total[1] += 1

    def finish(self, key):
        """Fit ``key`` has no epoch left (done, stopped early, skipped)."""
        if key in self.fits:
            self.fits[key]["epochs"] = self.fits[key]["done"]

    def elapsed(self):
        return self.clock() - self.start

    def left(self):
        if not self.measured:
            return None
        overall = sum(s for s, _ in self.measured.values()) / sum(n for _, n in self.measured.values())
        seconds = 0.0
        for fit in self.fits.values():
            remaining = max(0, fit["epochs"] - fit["done"])
            if remaining:
                spent, epochs = self.measured.get(fit["kind"], (0.0, 0))
                seconds += remaining * (spent / epochs if epochs else overall)
        return seconds

    def summary(self):
        """``"run: 3m12s elapsed, about 20m left"``."""
        text = f"run: {format_seconds(self.elapsed())} elapsed"
        left = self.left()
        if left is not None:
            text += f", about {format_seconds(left)} left" if left >= 1 else ", nearly done"
        return text


def _figures(logs):
    parts = []
    order = lambda name: (name in ("learning_rate", "lr"), name.startswith("val_"), name != "loss", name)  # noqa: E731
    for name in sorted(logs or {}, key=order):
        value = logs[name]
        try:
            value = float(value)
        except (TypeError, ValueError):
            continue
        if name in ("learning_rate", "lr"):
            parts.append(f"lr {value:.2g}")
        else:
            parts.append(f"{name} {value:.4f}")
    return "  ".join(parts)


class EpochProgress(keras.callbacks.Callback):
    """Reports one fit: bar within an epoch, a line per epoch, resume and
    early-stop lines. Stateless: it may follow the backup callback.

    Args:
        label: what the lines start with, e.g. ``"fold 2/6, stage 1/2"``.
        epochs: the fit's epochs.
        say: ``say(message)`` writes one line (log and stdout).
        run: the ``RunProgress`` of the run (optional).
        key: this fit's key in ``run``.
        bar: draw a ``keras.utils.Progbar`` within each epoch (a terminal).
    """

    def __init__(self, label, epochs, *, say, run=None, key=None, bar=False):
        super().__init__()
        self.label = label
        self.epochs = int(epochs)
        self.say = say
        self.run = run
        self.key = key if key is not None else label
        self.bar = bar
        self.steps = None
        self._progbar = None
        self._first = None
        self._last = None
        self._start = None
        if run is not None and self.key not in run.fits:
            run.plan(self.key, epochs)

    def on_train_begin(self, logs=None):
        self._first = self._last = None
        if self.params and self.params.get("steps"):
            self.steps = self.params["steps"]

    def on_epoch_begin(self, epoch, logs=None):
        if self._first is None:
            self._first = epoch
            if epoch > 0:
                self.say(
                    f"{self.label}: resuming at epoch {epoch + 1}/{self.epochs} "
                    f"(epochs 1-{epoch} restored from the backup)"
                )
                if self.run is not None:
                    self.run.resume(self.key, epoch)
        self._start = time.monotonic()
        self._seen = 0
        if self.bar:
            self._progbar = keras.utils.Progbar(self.steps, width=24, verbose=1, unit_name="batch")

    def on_train_batch_end(self, batch, logs=None):
        self._seen = batch + 1
        if self._progbar is not None:
            values = [(k, float(v)) for k, v in (logs or {}).items() if is_number(v)]
            # Never finalised: the epoch's line replaces the bar.
            self._progbar.update(batch + 1, values=values, finalize=False)

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.monotonic() - self._start
        if self._seen:
            self.steps = self._seen  # The next epoch's bar knows its length.
        if self._progbar is not None:
            sys.stdout.write("\r\x1b[K")  # The bar gives way to the epoch's line.
            sys.stdout.flush()
            self._progbar = None
        self._last = epoch
        line = f"{self.label} epoch {epoch + 1}/{self.epochs}: {_figures(logs)} ({format_seconds(seconds)})"
        if self.run is not None:
            self.run.epoch_done(self.key, seconds)
            line += f" | {self.run.summary()}"
        self.say(line)

    def on_train_end(self, logs=None):
        done = self._last + 1 if self._last is not None else None
        if done is None:
            self.say(f"{self.label}: already finished in an earlier attempt")
        elif done < self.epochs:
            self.say(f"{self.label}: early stopping after epoch {done}/{self.epochs}")
        if self.run is not None:
            self.run.finish(self.key)


class CountProgress:
    """Reports a loop over ``total`` items: a bar on a terminal, else a line
    at most every ``every`` seconds (and at the end), with the time left.

    ``update(done)`` after each item (or batch of items); ``close()`` at the
    end. A total of 0 reports nothing. ``rate=True`` adds the items per
    second to each line (``12.5 files/s``).
    """

    def __init__(self, label, total, *, say, bar=False, every=30.0, unit="files", rate=False,
                 clock=time.monotonic):
        self.label = label
        self.total = int(total)
        self.say = say
        self.unit = unit
        self.rate = rate
        self.every = every
        self.clock = clock
        self.start = self._last_line = clock()
        self.done = 0
        self._progbar = (
            keras.utils.Progbar(self.total, width=24, unit_name=unit.rstrip("s")) if bar and total else None
        )

    def update(self, done):
        self.done = int(done)
        if self._progbar is not None:
            self._progbar.update(self.done, finalize=False)
            return
        now = self.clock()
        if self.total and self.done < self.total and now - self._last_line >= self.every:
            self._last_line = now
            self.say(self._line(now))

    def _line(self, now, *, end=False):
        elapsed = now - self.start
        text = f"{self.label}: {self.done}/{self.total} {self.unit}{' done' if end else ''} ("
        if self.rate and elapsed > 0:
            text += f"{self.done / elapsed:.1f} {self.unit}/s, "
        text += format_seconds(elapsed)
        if not end and 0 < self.done < self.total:
            text += f", about {format_seconds(elapsed * (self.total - self.done) / self.done)} left"
        return text + ")"

    def close(self):
        if not self.total:
            return
        if self._progbar is not None:
            sys.stdout.write("\r\x1b[K")
            sys.stdout.flush()
            self._progbar = None
        self.say(self._line(self.clock(), end=True))


class Reporter:
    """What a run reports through: ``say`` (one line: log and stdout),
    whether bars are drawn (``bar``: stdout is a terminal) and the run's
    ``RunProgress``."""

    def __init__(self, say=None, *, bar=False):
        self.say = say or (lambda message: None)
        self.bar = bar
        self.run = RunProgress()

    def fit(self, label, epochs, *, key=None):
        """The ``EpochProgress`` callback of one fit."""
        return EpochProgress(label, epochs, say=self.say, run=self.run, key=key, bar=self.bar)

    def plan(self, key, epochs, kind="epoch"):
        self.run.plan(key, epochs, kind)

    def count(self, label, total, *, unit="files", every=30.0):
        """A ``CountProgress`` for a loop over ``total`` items."""
        return CountProgress(label, total, say=self.say, bar=self.bar, every=every, unit=unit)
