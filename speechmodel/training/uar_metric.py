"""UAR as a Keras training metric.

``UnweightedAverageRecall`` (name ``"uar"``) accumulates the confusion
matrix of the batches a fit sees, so the training logs carry ``uar`` next
to the validation ``val_uar`` that ``callbacks.ValidationMonitor`` adds:
in TensorBoard the two share the name ``epoch_uar`` (train and validation
runs) and overlay, and ``curves.png`` draws them in one panel. The figure
is of the training batches as trained on (dropout and augmentation on,
class weights ignored): a guide to fitting, not a result.
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="speechmodel")
class UnweightedAverageRecall(keras.metrics.Metric):
    """Mean over the classes seen of the per-class recall.

    Args:
        num_classes: number of classes (the model's outputs).
        name: the metric's name in the logs.

    ``update_state(y_true, y_pred)``: ``y_true`` class indices ``(B,)`` or
    one-hot / mixed labels ``(B, C)`` (their argmax), ``y_pred`` scores
    ``(B, C)``. Classes with no sample so far are left out of the mean.
    """

    def __init__(self, num_classes, name="uar", **kwargs):
        super().__init__(name=name, **kwargs)
        if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
            raise ValueError(f"`num_classes` must be a positive int. Received: num_classes={num_classes!r}")
        self.num_classes = num_classes
        self.confusion = self.add_variable(
            shape=(num_classes, num_classes), initializer="zeros", dtype="float32", name="confusion"
        )

    def update_state(self, y_true, y_pred, sample_weight=None):
        del sample_weight  # Class weights would distort a recall.
        y_pred = ops.argmax(ops.convert_to_tensor(y_pred), axis=-1)
        y_true = ops.convert_to_tensor(y_true)
        if len(y_true.shape) == len(y_pred.shape) + 1:
            y_true = ops.argmax(y_true, axis=-1)
        # Partial labels carry their label set above num_classes
        # (``optimizers.encode_partial_labels``): the class is the remainder.
        y_true = ops.reshape(ops.cast(y_true, "int32"), (-1,)) % self.num_classes
        y_pred = ops.reshape(ops.cast(y_pred, "int32"), (-1,))
        truth = ops.one_hot(y_true, self.num_classes, dtype="float32")
        guess = ops.one_hot(y_pred, self.num_classes, dtype="float32")
        self.confusion.assign_add(ops.matmul(ops.transpose(truth), guess))

    def result(self):
        support = ops.sum(self.confusion, axis=1)
        recall = ops.divide_no_nan(ops.diagonal(self.confusion), support)
        seen = ops.cast(support > 0, "float32")
        return ops.divide_no_nan(ops.sum(recall * seen), ops.sum(seen))

    def reset_state(self):
        self.confusion.assign(ops.zeros((self.num_classes, self.num_classes), dtype="float32"))

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes}


@keras.saving.register_keras_serializable(package="speechmodel")
class SparseAccuracy(keras.metrics.SparseCategoricalAccuracy):
    """``accuracy`` on class indices, partial labels included (the class of
    ``label + C * set`` is its remainder modulo ``num_classes``)."""

    def __init__(self, num_classes, name="accuracy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.num_classes = int(num_classes)

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = ops.cast(ops.convert_to_tensor(y_true), "int32") % self.num_classes
        return super().update_state(y_true, y_pred, sample_weight=sample_weight)

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes}
