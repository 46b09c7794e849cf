"""The Ray engine on real RAVDESS clips: infer.py's numbers with 2 worker
processes, and a run that completes although a worker dies. One local Ray
for the module (its start-up is slow on 2 cores)."""

import os

import pytest

from speechmodel.batch import engines, run_batch
from speechmodel.batch.runner_test import assert_same_as_infer, clips, infer_results, lines
from speechmodel.batch.task import BatchWorker

# slow: a local Ray and its worker processes start in about a minute on 2 cores.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def local_ray():
    import ray

    assert engines.start_ray(cpus=2)
    yield
    ray.shutdown()


def test_two_ray_workers_equal_infer(local_ray, tmp_path):
    paths = clips(6, start=40)
    summary = run_batch(paths, tmp_path / "out", model="fast", engine="ray", workers=2, batch_size=2,
                        shard_size=4)
    assert (summary.analysed, summary.failed) == (6, 0)
    assert_same_as_infer(lines(tmp_path / "out"), infer_results(paths, "fast", tmp_path))


def test_a_dead_worker_is_restarted_and_the_run_completes(local_ray, tmp_path):
    marker = tmp_path / "died"

    class DiesOnce(BatchWorker):
        """Kills its process at its first batch, once in the whole run."""

        def __call__(self, batch):
            if not marker.exists():
                marker.write_text(str(os.getpid()))
                os._exit(1)
            return super().__call__(batch)

    paths = clips(4, start=50)
    summary = run_batch(paths, tmp_path / "out", model="fast", engine="ray", workers=2, batch_size=2,
                        worker_class=DiesOnce)
    assert marker.exists()  # A worker did die.
    assert (summary.analysed, summary.failed) == (4, 0)
    assert sorted(r["file"] for r in lines(tmp_path / "out")) == sorted(paths)
