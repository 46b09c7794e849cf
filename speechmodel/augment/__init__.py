"""Data augmentation for training, as TensorFlow ops the tf.data pipeline calls.

Everything is driven by a JSON-friendly description stored in the training
config (``training.augment``)::

    {"noise": {"p": 0.5, "snr_db": [5, 20], "kind": ["white", "pink", "brown"]},
     "speed": {"p": 0.5, "factors": [0.9, 1.0, 1.1]},
     "pitch": {"p": 0.5, "semitones": [-2, 2]},
     "specaugment": {"p": 0.8, "freq_masks": 2, "freq_width": 8,
                     "time_masks": 2, "time_width": 10},
     "mixup": {"alpha": 0.2}}

A section that is absent (or ``null``) is off; ``{}`` turns it on with the
defaults of :data:`DEFAULTS`. Unknown sections or keys and bad values raise
``ValueError`` quoting what was received. :class:`Augmentation` parses and
validates the description; ``Augmentation.from_dict(c).to_dict()`` is the
fully resolved form worth saving with a run.

The modules: ``settings`` (the description; no TensorFlow), ``waveform``,
``spectrogram``, ``mixup`` (the operations) and ``seeds``. Where each part
runs (see ``speechmodel.pipeline.make_dataset``):

* :func:`build_waveform_augment` -> ``fn(waveform, seeds)``, per utterance on
  the 16 kHz float32 waveform, in this order: speed perturbation, pitch
  shift, additive noise (last, so that the SNR is measured against the
  signal the model hears and the noise itself is not pitch-shifted).
* :func:`build_features_augment` -> ``fn(segments, mask, seeds)``, per batch
  on the normalised three-channel log-mel segments: SpecAugment.
* :func:`apply_mixup` / :func:`mixup_batch` on the batched ``(x, labels)``
  dataset: mixup, which needs the labels and so runs after ``make_dataset``.
  The labels become soft one-hot vectors: train with
  ``keras.losses.CategoricalCrossentropy`` (not the sparse loss) and
  ``categorical_accuracy``.

Randomness is stateless: every draw comes from the ``seeds`` the pipeline
passes (new every epoch, reproducible for a run's seed), so the same seeds
always give the same output.

Costs per utterance (measured in graph mode on this project's shared
2-core CPU build machine, one RAVDESS file of 3.3 s at 16 kHz): noise (TF
ops) about 2 ms white, 7 ms pink or brown (an FFT); speed perturbation
(soxr "HQ" through ``tf.numpy_function``) about 2 ms; pitch shift (librosa's
phase vocoder + soxr through ``tf.numpy_function``) about 20 ms, i.e.
roughly 0.6 % of real time on one core. The ``numpy_function`` steps hold Python's
GIL, so they do not scale with ``num_parallel_calls``: with ``pitch.p=0.5``
an epoch of RAVDESS (1440 files) spends about 15 s of one core on it.
"""
