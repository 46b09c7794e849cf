"""The models inference runs: ``InferenceModel`` and its backends.

* ``KerasInferenceModel``: an ``EmotionRecognizer`` (what ``train.py``
  writes as ``model.keras``): batched log-mel segments (or waveforms, for a
  classifier on a pretrained speech front end) through one compiled
  classifier call per batch, with the attention weights when asked.
* ``ClassicalInferenceModel``: a classical scikit-learn model on utterance
  statistics (``speechmodel.classical``).

Both give ``predict_files`` (files through ``speechmodel.pipeline``) and
``predict_waveforms`` (windows of a long recording). ``speechmodel.
inference.loading.load_model`` opens a model file as one of them.
"""

import numpy as np


class InferenceModel:
    """A loaded model, ready for ``Predictor``.

    Attributes:
        path: the file it was loaded from.
        kind: ``"keras"`` or ``"classical"``.
        class_names: the output classes.
        sample_rate: the rate audio is analysed at.
    """

    kind = None
    path = None
    class_names = ()
    sample_rate = 16000
    speaker_normalization = None  # A model trained with speaker normalisation: its layer.

    @property
    def has_attention(self):
        return False

    def describe(self):
        return {"path": self.path, "kind": self.kind, "class_names": list(self.class_names)}

    def too_short_reason(self, samples):
        """Why ``samples`` samples (at ``sample_rate``) are too few for this
        model (what ``predict_files`` reports for such a file), or None."""
        return None


def segment_times(config, n_segments, duration):
    """(start, end) seconds of the ``n_segments`` segments (``FeatureConfig``
    ``config``'s grid) of an utterance of ``duration`` seconds."""
    frame = config.hop_length / config.sample_rate
    spans = []
    for n in range(n_segments):
        start = n * config.segment_hop * frame
        end = min(duration, start + config.segment_frames * frame)
        spans.append((start, max(start, end)))
    return spans


def takes_waveforms(classifier):
    """Whether a classifier takes ``{"waveforms", "lengths"}`` (a model on a
    pretrained speech front end) rather than log-mel segments."""
    from speechmodel.models.recognizer import takes_waveforms as check

    return check(classifier)


class KerasInferenceModel(InferenceModel):
    """An ``EmotionRecognizer``: batched segments through its classifier."""

    kind = "keras"

    def __init__(self, recognizer, path=None):
        import tensorflow as tf

        from speechmodel import features as F

        self.recognizer = recognizer
        self.path = None if path is None else str(path)
        self.classifier = recognizer.classifier
        self.config = recognizer.features
        self.sample_rate = self.config.sample_rate
        n_outputs = int(recognizer.outputs[0].shape[-1])
        names = list(recognizer.class_names) or [f"class_{i}" for i in range(n_outputs)]
        self.class_names = names
        self._tf = tf
        self._attention_net = None
        self._embed = None  # See embedding().
        self._heads = {}  # predict_embeddings's, with and without attention.
        segment_spec = {
            "segments": tf.TensorSpec([None, None, *self.config.segment_shape], tf.float32),
            "mask": tf.TensorSpec([None, None], tf.bool),
        }
        config = self.config
        # A classifier on a pretrained speech front end (Whisper) takes the
        # waveforms itself; the others take log-mel segments.
        self.takes_waveforms = takes_waveforms(self.classifier)

        def classify(x, attention, counts):
            if attention:
                out = self._attention_network()(x, training=False)
                return self.calibrate(out["probabilities"]), out["attention"]
            out = self.classifier(x, training=False)
            if isinstance(out, dict):
                out = out["probabilities"]
            return self.calibrate(out), tf.zeros([tf.shape(counts)[0], tf.reduce_max(counts)], tf.float32)

        def make(attention):
            @tf.function(input_signature=[segment_spec])
            def from_segments(x):
                counts = tf.reduce_sum(tf.cast(x["mask"], tf.int32), axis=1)
                return classify(x, attention, counts)

            @tf.function(
                input_signature=[
                    tf.TensorSpec([None, None], tf.float32),
                    tf.TensorSpec([None], tf.int32),
                ]
            )
            def from_waveforms(waveforms, lengths):
                if self.takes_waveforms:
                    frames = 1 + tf.maximum(lengths, 1) // config.hop_length
                    counts = tf.cast(F.num_segments(frames, config=config), tf.int32)
                    x = {"waveforms": waveforms, "lengths": lengths}
                    probs, weights = classify(x, attention, counts)
                    return probs, weights, counts
                segments, counts = F.batch_segment_features(
                    waveforms, lengths, config=config
                )
                mask = tf.sequence_mask(counts, maxlen=tf.shape(segments)[1])
                probs, weights = classify({"segments": segments, "mask": mask}, attention, counts)
                return probs, weights, counts

            return from_segments, from_waveforms

        self._functions = {False: make(False), True: make(True)}

    @property
    def temperature(self):
        """The temperature the model's probabilities are calibrated with
        (``EmotionRecognizer.temperature``), or None."""
        return getattr(self.recognizer, "temperature", None)

    def calibrate(self, probabilities):
        """The classifier's probabilities through the recognizer's
        ``TemperatureScaling`` (unchanged for a model without one)."""
        layer = getattr(self.recognizer, "calibration", None)
        return probabilities if layer is None else layer(probabilities)

    def describe(self):
        out = super().describe()
        if self.temperature is not None:
            out["temperature"] = self.temperature
        return out

    @property
    def has_attention(self):
        return callable(getattr(self.classifier, "attention_model", None))

    def _attention_network(self):
        if self._attention_net is None:
            self._attention_net = self.classifier.attention_model()
        return self._attention_net

    @property
    def speaker_normalization(self):
        """The classifier's ``SpeakerNormalization`` layer (a model trained
        with ``model.speaker_normalization``), or None."""
        return getattr(self.classifier, "speaker_normalization", None)

    def embedding(self):
        """The traced embedding function (``speechmodel.embedding``), made
        when first needed."""
        if self._embed is None:
            from speechmodel.embedding import embedding_function

            self._embed = embedding_function(self.classifier.segment_encoder, self.config)
        return self._embed

    def embed_waveforms(self, waveforms, lengths):
        """(B, S) zero-padded float32 waveforms and (B,) lengths ->
        ``(embeddings (B, N, ...), counts (B,))`` as NumPy, before any
        speaker normalisation: each row's valid segments are
        ``embeddings[b, :counts[b]]`` (``speechmodel.embedding``).

        Raises:
            TypeError: the classifier has no segment encoder.
        """
        from speechmodel import features as F
        from speechmodel.embedding import takes_waveforms as embeds_waveforms

        tf = self._tf
        encoder = getattr(self.classifier, "segment_encoder", None)
        if encoder is None:
            raise TypeError(
                f"the classifier {type(self.classifier).__name__} has no segment encoder: embeddings "
                "exist for SpeechModel (DCNN-BLSTMwA) and pretrained front-end models"
            )
        waves = tf.constant(waveforms, tf.float32)
        lengths = tf.constant(lengths, tf.int32)
        if embeds_waveforms(encoder):
            x = {"waveforms": waves, "lengths": lengths}
        else:
            segments, counts = F.batch_segment_features(waves, lengths, config=self.config)
            x = {"segments": segments, "mask": tf.sequence_mask(counts, maxlen=tf.shape(segments)[1])}
        embeddings, counts = self.embedding()(x)
        return np.asarray(embeddings, np.float32), np.asarray(counts)

    def embed_files(self, paths, *, batch_size, on_failure):
        """Yields ``(index, embeddings)``: the ``(N, L, D)`` segment
        embeddings of each file of ``paths`` that loads, before any speaker
        normalisation (``speechmodel.embedding.embed_files``);
        ``on_failure(index, reason)`` for the others. For a model on a
        pretrained front end (``takes_waveforms``)."""
        from speechmodel.embedding import embed_files
        from speechmodel.pipeline import FailureLog

        failures = FailureLog()
        position = {p: i for i, p in enumerate(paths)}
        yield from embed_files(
            self.classifier.segment_encoder, paths, features=self.config, batch_size=batch_size,
            failures=failures, embed=self.embedding(),
        )
        for path, reason in failures:
            on_failure(position[path], reason)

    def predict_embeddings(self, sequences, *, batch_size, attention, statistics=None):
        """Yields ``(index, probabilities, attention or None, n_segments)``
        for each ``(N, L, D)`` array of ``sequences`` (``embed_files``'s),
        through the model's head.

        A speaker-normalised model standardises them first with
        ``statistics`` (``(mean, variance)``, one speaker's: see
        ``speechmodel.layers.speaker_normalization.speaker_statistics``) if
        given, else with the statistics its layer holds (an average training
        speaker's). The model itself is never changed, so calls with other
        statistics may run at the same time."""
        from speechmodel.speaker_statistics import standardize

        tf = self._tf
        layer = self.speaker_normalization
        if layer is not None:
            mean, variance = layer.statistics() if statistics is None else statistics
            sequences = [standardize(s, mean, variance, epsilon=layer.epsilon) for s in sequences]
        elif statistics is not None:
            raise ValueError(
                "speaker statistics need a model trained with speaker normalisation. "
                f"Received: statistics for {self.path or 'a model without it'}"
            )
        if attention not in self._heads:
            head = self.classifier.sequence_head
            head = head.with_attention() if attention else head
            shape = [None, None, *head.input["embeddings"].shape[2:]]

            @tf.function(
                input_signature=[tf.TensorSpec(shape, tf.float32), tf.TensorSpec([None, None], tf.bool)]
            )
            def run(embeddings, mask):
                out = head({"embeddings": embeddings, "mask": mask}, training=False)
                if attention:
                    return self.calibrate(out["probabilities"]), out["attention"]
                return self.calibrate(out), tf.zeros(tf.shape(mask), tf.float32)

            self._heads[attention] = run
        run = self._heads[attention]
        order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]))
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            counts = [len(sequences[i]) for i in rows]
            batch = np.zeros((len(rows), max(counts), *sequences[rows[0]].shape[1:]), np.float32)
            mask = np.zeros((len(rows), max(counts)), bool)
            for b, i in enumerate(rows):
                batch[b, : counts[b]] = sequences[i]
                mask[b, : counts[b]] = True
            probs, weights = run(batch, mask)
            probs, weights = probs.numpy(), weights.numpy()
            for b, i in enumerate(rows):
                yield i, probs[b], (weights[b, : counts[b]] if attention else None), counts[b]

    def predict_files(self, paths, *, batch_size, attention, on_failure):
        """Yields ``(index, probabilities, attention or None, n_segments)``
        for each file of ``paths`` that loads; ``on_failure(index, reason)``
        for the others."""
        from speechmodel.pipeline import FailureLog, make_dataset

        if not paths:
            return
        if attention:
            self._attention_network()  # Built eagerly, outside the trace.
        from_segments, from_waveforms = self._functions[bool(attention)]
        failures = FailureLog()
        position = {p: i for i, p in enumerate(paths)}
        reported = 0
        dataset = make_dataset(
            paths,
            config=self.config,
            batch_size=batch_size,
            with_index=True,
            failures=failures,
            outputs="waveforms" if self.takes_waveforms else "segments",
        )
        for x, index in dataset:
            if self.takes_waveforms:
                probs, weights, counts = from_waveforms(x["waveforms"], x["lengths"])
                counts = counts.numpy()
            else:
                probs, weights = from_segments(x)
                counts = x["mask"].numpy().sum(axis=1)
            probs, weights = probs.numpy(), weights.numpy()
            for row, i in enumerate(index.numpy()):
                n = int(counts[row])
                yield int(i), probs[row], (weights[row, :n] if attention else None), n
            while reported < len(failures):
                path, reason = failures.failures[reported]
                on_failure(position[path], reason)
                reported += 1
        for path, reason in failures.failures[reported:]:
            on_failure(position[path], reason)

    def predict_waveforms(self, waveforms, lengths, *, attention, statistics=None):
        """(B, S) zero-padded waveforms -> (probabilities (B, C), attention
        list of (n_b,) arrays or None). ``statistics``: one speaker's, for
        a speaker-normalised model (see ``predict_embeddings``)."""
        if statistics is not None:
            embeddings, counts = self.embedding()({
                "waveforms": self._tf.constant(waveforms, self._tf.float32),
                "lengths": self._tf.constant(lengths, self._tf.int32),
            })
            embeddings, counts = embeddings.numpy(), counts.numpy()
            sequences = [embeddings[b, : counts[b]] for b in range(len(counts))]
            rows = sorted(self.predict_embeddings(
                sequences, batch_size=len(sequences), attention=attention, statistics=statistics
            ), key=lambda row: row[0])
            probs = np.stack([row[1] for row in rows])
            return probs, ([row[2] for row in rows] if attention else None)
        if attention:
            self._attention_network()
        from_waveforms = self._functions[bool(attention)][1]
        probs, weights, counts = from_waveforms(
            self._tf.constant(waveforms, self._tf.float32),
            self._tf.constant(lengths, self._tf.int32),
        )
        probs = probs.numpy()
        if not attention:
            return probs, None
        weights, counts = weights.numpy(), counts.numpy()
        return probs, [weights[b, : counts[b]] for b in range(len(probs))]

    def segment_times(self, n_segments, duration):
        """(start, end) seconds of the ``n_segments`` segments of an
        utterance of ``duration`` seconds."""
        return segment_times(self.config, n_segments, duration)


    def too_short_reason(self, samples):
        from speechmodel.pipeline import too_short_reason

        return too_short_reason(samples, self.config) if samples < self.config.win_length else None


class ClassicalInferenceModel(InferenceModel):
    """A classical scikit-learn model on utterance statistics."""

    kind = "classical"

    def __init__(self, model, path=None, *, n_jobs=2):
        self.model = model
        self.path = None if path is None else str(path)
        self.class_names = list(model.class_names)
        self.sample_rate = model.feature_config.sample_rate
        self.n_jobs = n_jobs

    def predict_files(self, paths, *, batch_size, attention, on_failure):
        del batch_size, attention
        if not paths:
            return
        result = self.model.predict_proba_paths(paths, n_jobs=self.n_jobs)
        for failure in result.failures:
            on_failure(failure.index, failure.reason)
        for row, i in enumerate(result.kept):
            yield int(i), result.probabilities[row].astype(np.float32), None, 0

    def too_short_reason(self, samples):
        from speechmodel.classical.features import too_short_reason

        config = self.model.feature_config
        return too_short_reason(samples, config) if samples < config.hop_length else None

    def predict_waveforms(self, waveforms, lengths, *, attention):
        from speechmodel.classical.features import compute_features

        del attention
        rows = [
            compute_features(waveforms[b, : lengths[b]], config=self.model.feature_config)
            for b in range(len(lengths))
        ]
        return self.model.predict_proba(np.stack(rows)).astype(np.float32), None
