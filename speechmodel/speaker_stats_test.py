import subprocess
import sys

import numpy as np

from speechmodel import speaker_stats


def test_numpy_only_and_shared_with_the_layer():
    # The classical models use these without loading Keras or TensorFlow.
    code = ("import sys, speechmodel.speaker_stats, speechmodel.classical.classifiers; "
            "print('keras' in sys.modules or 'tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    from speechmodel.layers import speaker_normalization

    assert speaker_normalization.speaker_statistics is speaker_stats.speaker_statistics


def test_one_vector_per_utterance_is_a_sequence_of_one():
    rows = np.array([[1.0, 10.0], [3.0, 30.0]])
    mean, variance = speaker_stats.speaker_statistics([rows])
    np.testing.assert_allclose(mean, [2.0, 20.0])
    np.testing.assert_allclose(variance, [1.0, 100.0])
    np.testing.assert_allclose(speaker_stats.standardize(rows, mean, variance, epsilon=0.0), [[-1, -1], [1, 1]])
