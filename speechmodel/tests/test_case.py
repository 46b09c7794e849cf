"""``TestCase``: the shared checks of speechmodel's layers and models.

keras-hub habit: every layer test goes through ``run_layer_test`` (config
round trip through JSON, symbolic and eager calls, one training step) and
every model through ``run_model_saving_test`` (``.keras`` save and a
``safe_mode=True`` reload that gives the same outputs).
"""

import doctest
import json
import shutil
import tempfile
import unittest

import keras
import numpy as np
from keras import ops
from keras import tree


def _to_numpy(x):
    return tree.map_structure(lambda t: np.asarray(ops.convert_to_numpy(t)), x)


def _symbolic(x):
    """A ``keras.Input`` with the shape (batch included) and dtype of ``x``."""
    x = np.asarray(x)
    return keras.Input(batch_shape=x.shape, dtype=str(x.dtype))


class TestCase(unittest.TestCase):
    """``unittest.TestCase`` with Keras helpers (runs under pytest)."""

    def setUp(self):
        super().setUp()
        keras.config.disable_traceback_filtering()
        keras.utils.clear_session(free_memory=False)
        keras.utils.set_random_seed(1337)

    def get_temp_dir(self):
        """A fresh temporary directory, removed after the test."""
        path = tempfile.mkdtemp(prefix="speechmodel_test_")
        self.addCleanup(shutil.rmtree, path, ignore_errors=True)
        return path

    def assertAllClose(self, x, y, atol=1e-6, rtol=1e-6, msg=None):
        """Elementwise closeness of two (nested) tensors or arrays."""
        x, y = _to_numpy(x), _to_numpy(y)
        tree.assert_same_structure(x, y)
        for a, b in zip(tree.flatten(x), tree.flatten(y)):
            np.testing.assert_allclose(a, b, atol=atol, rtol=rtol, err_msg=msg or "")

    def assertAllFinite(self, x, msg=None):
        for a in tree.flatten(_to_numpy(x)):
            self.assertTrue(np.all(np.isfinite(a)), msg or f"non-finite: {a}")

    def run_layer_test(
        self,
        cls,
        init_kwargs,
        input_data,
        expected_output_shape,
        *,
        call_kwargs=None,
        expected_output_dtype=None,
        expected_num_trainable_weights=None,
        expected_num_non_trainable_weights=None,
        run_training_check=True,
    ):
        """Checks a layer class end to end.

        Args:
            cls: the layer class.
            init_kwargs: dict, constructor arguments (JSON-serialisable).
            input_data: the first call argument (array or dict of arrays).
            expected_output_shape: a shape tuple, or a nested structure of
                shape tuples for several outputs.
            call_kwargs: dict of further call arguments; array values (e.g.
                ``mask``) become symbolic inputs in the symbolic call.
            expected_output_dtype: dtype (or structure) of the outputs.
            expected_num_trainable_weights: int, checked when given.
            expected_num_non_trainable_weights: int, checked when given.
            run_training_check: fit a model around the layer for one step
                (needs at least one trainable weight).

        The checks: the config survives ``json.dumps`` and rebuilds an equal
        config; a symbolic call and an eager call give the expected shapes;
        a model around the layer trains for one step with a finite loss and
        changes the trainable weights.
        """
        call_kwargs = dict(call_kwargs or {})
        array_kwargs = {
            k: v for k, v in call_kwargs.items() if isinstance(v, np.ndarray)
        }
        static_kwargs = {k: v for k, v in call_kwargs.items() if k not in array_kwargs}

        def check_shapes(outputs, where):
            if isinstance(outputs, dict):
                shapes = {k: tuple(v.shape) for k, v in outputs.items()}
                expected = {k: tuple(v) for k, v in expected_output_shape.items()}
            elif isinstance(outputs, (tuple, list)):
                shapes = [tuple(t.shape) for t in outputs]
                expected = [tuple(s) for s in expected_output_shape]
            else:
                shapes = tuple(outputs.shape)
                expected = tuple(expected_output_shape)
            self.assertEqual(shapes, expected, f"{where} output shapes")

        # Config round trip, through JSON.
        layer = cls(**init_kwargs)
        config = layer.get_config()
        for key in init_kwargs:
            self.assertIn(key, config, f"get_config() lacks `{key}`")
        serialized = json.loads(
            json.dumps(keras.saving.serialize_keras_object(layer))
        )
        revived = keras.saving.deserialize_keras_object(serialized)
        self.assertIsInstance(revived, cls)
        self.assertEqual(
            json.dumps(revived.get_config(), sort_keys=True, default=str),
            json.dumps(config, sort_keys=True, default=str),
        )

        # Symbolic call.
        layer = cls(**init_kwargs)
        sym_inputs = tree.map_structure(_symbolic, input_data)
        sym_kwargs = {k: _symbolic(v) for k, v in array_kwargs.items()}
        sym_outputs = layer(sym_inputs, **sym_kwargs, **static_kwargs)
        check_shapes(sym_outputs, "symbolic")

        # Eager call.
        layer = cls(**init_kwargs)
        outputs = layer(input_data, **array_kwargs, **static_kwargs)
        check_shapes(outputs, "eager")
        if expected_output_dtype is not None:
            dtypes = tree.map_structure(
                lambda t: keras.backend.standardize_dtype(t.dtype), outputs
            )
            self.assertEqual(
                json.dumps(dtypes), json.dumps(expected_output_dtype)
            )
        if expected_num_trainable_weights is not None:
            self.assertLen(layer.trainable_weights, expected_num_trainable_weights)
        if expected_num_non_trainable_weights is not None:
            self.assertLen(
                layer.non_trainable_weights, expected_num_non_trainable_weights
            )
        self.assertAllFinite(outputs)

        if not run_training_check:
            return
        # One training step of a model around the layer.
        layer = cls(**init_kwargs)
        def model_input(x, name):
            x = np.asarray(x)
            return keras.Input(
                batch_shape=(None, *x.shape[1:]), dtype=str(x.dtype), name=name
            )

        if isinstance(input_data, dict):
            model_inputs = {k: model_input(v, k) for k, v in input_data.items()}
        else:
            model_inputs = model_input(input_data, "x")
        kw_inputs = {k: model_input(v, k) for k, v in array_kwargs.items()}
        model_outputs = layer(model_inputs, **kw_inputs, **static_kwargs)
        flat_out = [
            keras.layers.Flatten()(t) if len(t.shape) > 2 else t
            for t in tree.flatten(model_outputs)
            if "float" in keras.backend.standardize_dtype(t.dtype)
        ]
        merged = (
            keras.layers.Concatenate(dtype="float32")(flat_out)
            if len(flat_out) > 1
            else keras.layers.Activation("linear", dtype="float32")(flat_out[0])
        )
        model = keras.Model(
            {"x": model_inputs, **kw_inputs} if kw_inputs else model_inputs,
            merged,
        )
        self.assertGreater(
            len(model.trainable_weights), 0, "nothing to train in the layer"
        )
        before = [np.array(w) for w in model.trainable_weights]
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
        x = {"x": input_data, **array_kwargs} if kw_inputs else input_data
        target = np.random.RandomState(0).standard_normal(
            (np.shape(tree.flatten(input_data)[0])[0], merged.shape[-1])
        ).astype("float32")
        history = model.fit(x, target, batch_size=len(target), epochs=1, verbose=0)
        self.assertTrue(np.isfinite(history.history["loss"][0]))
        changed = [
            not np.allclose(b, np.array(w))
            for b, w in zip(before, model.trainable_weights)
        ]
        self.assertTrue(any(changed), "one fit step changed no weight")

    def run_model_saving_test(
        self, cls_or_model, init_kwargs=None, input_data=None, *, atol=1e-6
    ):
        """Saves a model as ``.keras``, reloads it with ``safe_mode=True``.

        Args:
            cls_or_model: a model class (built with ``init_kwargs``) or a
                model instance.
            init_kwargs: dict, constructor arguments for a class.
            input_data: inputs of one ``predict`` call.
            atol: tolerance of the comparison of the outputs.

        Returns:
            The reloaded model. Checks it is of the same class and that its
            inference outputs equal the original's.
        """
        if isinstance(cls_or_model, type):
            model = cls_or_model(**(init_kwargs or {}))
        else:
            model = cls_or_model
        expected = model(input_data, training=False)
        path = f"{self.get_temp_dir()}/model.keras"
        model.save(path)
        restored = keras.saving.load_model(path, safe_mode=True)
        self.assertIs(type(restored), type(model))
        self.assertEqual(
            json.dumps(restored.get_config(), sort_keys=True, default=str),
            json.dumps(model.get_config(), sort_keys=True, default=str),
        )
        actual = restored(input_data, training=False)
        self.assertAllClose(actual, expected, atol=atol, rtol=0)
        return restored

    def run_docstring_test(self, obj, **globs):
        """Runs the ``>>>`` examples of ``obj``'s docstring (``np``,
        ``keras`` and ``obj`` itself are in scope) and fails on any
        mismatch or error."""
        finder = doctest.DocTestFinder(recurse=False)
        scope = {"np": np, "keras": keras, obj.__name__: obj, **globs}
        tests = [t for t in finder.find(obj, obj.__name__, globs=scope) if t.examples]
        self.assertTrue(tests, f"{obj.__name__} has no docstring example")
        runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
        report = []
        for test in tests:
            runner.run(test, out=report.append)
        self.assertEqual(runner.failures, 0, "".join(report))

    def assertLen(self, container, n, msg=None):
        self.assertEqual(len(container), n, msg)
