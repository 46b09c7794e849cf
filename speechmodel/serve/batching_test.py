import concurrent.futures
import threading

import numpy as np
import pytest

from speechmodel.serve.batching import BatchingQueue


def _recording_queue(gate=None, **options):
    """A queue whose model returns each waveform's first sample as its
    probability, and records the batches (the first one waits for
    ``gate``)."""
    batches = []

    def classify_batch(waves, lengths):
        if gate is not None and not batches:
            gate.wait(10)
        batches.append([float(w[0]) for w in waves])
        return waves[:, :1]

    return BatchingQueue(classify_batch, sample_rate=10, **options), batches


def test_every_waveform_gets_its_own_result():
    queue, batches = _recording_queue(max_batch=4)
    try:
        out = queue.classify([np.full(5, float(i), np.float32) for i in range(10)])
        assert out[:, 0].tolist() == list(range(10))
        assert all(len(b) <= 4 for b in batches) and queue.items == 10
    finally:
        queue.close()


def test_a_request_of_many_windows_shares_the_model_round_robin():
    gate = threading.Event()
    queue, batches = _recording_queue(gate, max_batch=4, max_wait=0)
    try:
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            many = pool.submit(queue.classify, [np.full(5, 1.0, np.float32)] * 40)
            # Queued, and its first batch of 4 is in the (held) model.
            while queue.waiting != 36:
                threading.Event().wait(0.01)
            one = pool.submit(queue.classify, [np.full(5, 2.0, np.float32)])
            while queue.waiting < 37:
                threading.Event().wait(0.01)
            gate.set()
            assert one.result(10)[0, 0] == 2.0 and many.result(10).shape == (40, 1)
        # The short request rode in the batch right after the one running.
        assert 2.0 in batches[1], batches[:3]
    finally:
        queue.close()


def test_padded_length_per_batch_is_bounded_and_cancelled_work_is_skipped():
    queue, batches = _recording_queue(max_batch=8, max_batch_seconds=2.0)  # 20 samples
    try:
        waves = [np.full(15, 1.0, np.float32), np.full(15, 2.0, np.float32), np.full(3, 3.0, np.float32)]
        out = queue.classify(waves)
        assert out[:, 0].tolist() == [1.0, 2.0, 3.0]
        assert batches == [[1.0], [2.0], [3.0]]  # 15 + 15 or 15 + 3 padded > 20 samples
        cancelled = threading.Event()
        cancelled.set()
        with pytest.raises(concurrent.futures.CancelledError):
            queue.classify([np.ones(5, np.float32)] * 3, cancelled=cancelled)
    finally:
        queue.close()
