"""One model, many requests: waveforms from concurrent requests are batched
together through the model on one thread.

``BatchingQueue.classify(waveforms)`` (called from any thread) queues the
waveforms and blocks until their probabilities are computed. A worker
thread takes the first waiting waveform, waits at most ``max_wait`` seconds
for more, and runs one zero-padded batch of at most ``max_batch`` waveforms
and ``max_batch_seconds`` of padded audio (so that one long utterance is
not padded against many short ones), then the next. A waveform whose
caller gave up (a timed-out request) is skipped.
"""

import collections
import concurrent.futures
import queue
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
        self._queue = queue.Queue()
        self._carry = collections.deque()  # Taken but did not fit a batch.
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
        futures = []
        for w in waveforms:
            future = concurrent.futures.Future()
            futures.append(future)
            self._queue.put((np.asarray(w, np.float32).reshape(-1), future))
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
        return self._queue.qsize() + len(self._carry)

    def _next(self, timeout):
        if self._carry:
            return self._carry.popleft()
        return self._queue.get(timeout=timeout) if timeout is None or timeout > 0 else self._queue.get_nowait()

    def _run(self):
        while True:
            try:
                item = self._next(None)
            except queue.Empty:  # pragma: no cover (blocking get)
                continue
            if item is None:
                return
            batch = [item]
            end = time.monotonic() + self.max_wait
            longest = len(item[0])
            while len(batch) < self.max_batch:
                try:
                    item = self._next(max(0.0, end - time.monotonic()))
                except queue.Empty:
                    break
                if item is None:
                    self._closed = True
                    break
                longer = max(longest, len(item[0]))
                if longer * (len(batch) + 1) > self.max_batch_samples:
                    self._carry.appendleft(item)
                    break
                longest = longer
                batch.append(item)
            live = [(w, f) for w, f in batch if f.set_running_or_notify_cancel()]
            if live:
                self._compute(live)
            if self._closed and not self._carry and self._queue.empty():
                return

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
            self._closed = True
            self._queue.put(None)
            self._thread.join(timeout)
