"""One model, many requests: waveforms from concurrent requests are batched
together through the model on one thread, fairly.

``BatchingQueue.classify(waveforms)`` (called from any thread) queues the
waveforms and blocks until their probabilities are computed. A worker
thread waits at most ``max_wait`` seconds after the first waveform for
others, then runs one zero-padded batch of at most ``max_batch`` waveforms
and ``max_batch_seconds`` of padded audio (so that one long utterance is
not padded against many short ones), then the next. Each call is its own
line: a batch takes one waveform from each waiting call in turn (round
robin, starting after the call served last), so a request of many
windows shares the model with the others instead of holding it until its
last window: a 3 s clip sent meanwhile waits for about one batch. A
waveform whose caller gave up (a timed-out request) is skipped.
"""

import collections
import concurrent.futures
import itertools
import threading
import time

import numpy as np
from speechmodel.errors import Error


class Closed(Error, RuntimeError):
    """The queue was closed: no more work is taken."""


class BatchingQueue:
    """See the module docstring.

    Args:
        classify_batch: ``(waveforms (B, S) float32, lengths (B,) int32) ->
            (B, C) probabilities``; only the worker thread calls it.
        sample_rate: for ``max_batch_seconds``.
        max_batch: waveforms per model call.
        max_wait: seconds the first waveform of a batch waits for others.
        max_batch_seconds: a batch's padded length times its size, at most
            (a single longer waveform still runs, alone).
    """

    def __init__(self, classify_batch, *, sample_rate=16000, max_batch=32, max_wait=0.005,
                 max_batch_seconds=256.0):
        if max_batch < 1 or max_wait < 0:
            raise ValueError(f"Need max_batch >= 1 and max_wait >= 0. Received: {max_batch}, {max_wait}")
        self.classify_batch = classify_batch
        self.max_batch = int(max_batch)
        self.max_wait = float(max_wait)
        self.max_batch_samples = int(max_batch_seconds * sample_rate)
        self._cond = threading.Condition()
        self._lines = collections.OrderedDict()  # call id -> deque of (waveform, future), in turn order
        self._ids = itertools.count()
        self._closed = False
        self.batches = 0
        self.items = 0
        self.largest_batch = 0
        self._thread = threading.Thread(target=self._run, name="batching-queue", daemon=True)
        self._thread.start()

    def classify(self, waveforms, *, deadline=None, cancelled=None):
        """Probabilities (n, C) of ``waveforms`` (1-D float32 arrays).

        Args:
            deadline: a ``time.monotonic()`` after which to give up
                (``TimeoutError``).
            cancelled: a ``threading.Event``; when set, the waveforms not
                yet computed are dropped (``concurrent.futures.CancelledError``).
        """
        if self._closed:
            raise Closed("the batching queue is closed")
        items = [(np.asarray(w, np.float32).reshape(-1), concurrent.futures.Future()) for w in waveforms]
        futures = [future for _, future in items]
        if items:
            with self._cond:
                self._lines[next(self._ids)] = collections.deque(items)
                self._cond.notify()
        out = []
        try:
            for future in futures:
                while True:
                    if cancelled is not None and cancelled.is_set():
                        raise concurrent.futures.CancelledError()
                    wait = 0.05
                    if deadline is not None:
                        left = deadline - time.monotonic()
                        if left <= 0:
                            raise TimeoutError("the request took too long")
                        wait = min(wait, left)
                    try:
                        out.append(future.result(timeout=wait))
                        break
                    except concurrent.futures.TimeoutError:
                        continue
        except BaseException:
            for future in futures:
                future.cancel()
            raise
        return np.stack(out) if out else np.zeros((0, 0), np.float32)

    @property
    def waiting(self):
        """Waveforms queued and not yet in a batch."""
        with self._cond:
            return sum(len(line) for line in self._lines.values())

    def _take_batch(self):
        """One batch, round robin over the waiting calls (the caller holds
        the lock and there is work)."""
        batch, longest = [], 0
        while len(batch) < self.max_batch and self._lines:
            took = False
            for key in list(self._lines):
                if len(batch) >= self.max_batch:
                    break
                line = self._lines[key]
                while line and line[0][1].cancelled():  # Its request gave up.
                    line.popleft()
                if not line:
                    del self._lines[key]
                    continue
                waveform = line[0][0]
                longer = max(longest, len(waveform))
                if batch and longer * (len(batch) + 1) > self.max_batch_samples:
                    continue
                batch.append(line.popleft())
                longest, took = longer, True
                # Served: its next waveform waits for the others' turn.
                self._lines.move_to_end(key)
                if not line:
                    del self._lines[key]
            if not took:
                break
        return batch

    def _run(self):
        while True:
            with self._cond:
                while not self._lines and not self._closed:
                    self._cond.wait()
                if not self._lines and self._closed:
                    return
            if self.max_wait:
                # The first waveform waits briefly for other requests'.
                end = time.monotonic() + self.max_wait
                with self._cond:
                    while not self._closed and self.waiting < self.max_batch:
                        left = end - time.monotonic()
                        if left <= 0:
                            break
                        self._cond.wait(left)
            with self._cond:
                batch = self._take_batch()
            live = [(w, f) for w, f in batch if f.set_running_or_notify_cancel()]
            if live:
                self._compute(live)

    def _compute(self, batch):
        lengths = np.array([max(1, len(w)) for w, _ in batch], np.int32)
        padded = np.zeros((len(batch), int(lengths.max())), np.float32)
        for b, (w, _) in enumerate(batch):
            padded[b, : len(w)] = w
        try:
            probs = np.asarray(self.classify_batch(padded, lengths), np.float32)
        except Exception as exc:  # Every caller of this batch gets it.
            for _, future in batch:
                future.set_exception(exc)
            return
        self.batches += 1
        self.items += len(batch)
        self.largest_batch = max(self.largest_batch, len(batch))
        for b, (_, future) in enumerate(batch):
            future.set_result(probs[b])

    def close(self, timeout=10.0):
        """Finishes the queued work, then stops the worker."""
        if not self._closed:
            with self._cond:
                self._closed = True
                self._cond.notify_all()
            self._thread.join(timeout)
