"""``speechmodel.inference`` was one module: every public name it had is
still importable from the package, and is the object its new module
defines."""

import importlib

import pytest

from speechmodel import inference

# The public names of the one-module speechmodel.inference, and where each
# lives now.
OLD_NAMES = {
    "ModelError": "speechmodel.inference.loading",
    "load_model": "speechmodel.inference.loading",
    "InferenceModel": "speechmodel.inference.backends",
    "KerasInferenceModel": "speechmodel.inference.backends",
    "ClassicalInferenceModel": "speechmodel.inference.backends",
    "takes_waveforms": "speechmodel.inference.backends",
    "Failure": "speechmodel.inference.results",
    "Segment": "speechmodel.inference.results",
    "Window": "speechmodel.inference.results",
    "Prediction": "speechmodel.inference.results",
    "Report": "speechmodel.inference.results",
    "Inputs": "speechmodel.inference.inputs",
    "read_list_file": "speechmodel.inference.inputs",
    "collect_inputs": "speechmodel.inference.inputs",
    "Predictor": "speechmodel.inference.predictor",
    "predict": "speechmodel.inference.predictor",
    "plot_prediction": "speechmodel.inference.plots",
    "render_plot": "speechmodel.inference.plots",
    "OUTPUT_FORMATS": "speechmodel.inference.formats",
    "format_table": "speechmodel.inference.formats",
    "format_json": "speechmodel.inference.formats",
    "format_jsonl": "speechmodel.inference.formats",
    "format_csv": "speechmodel.inference.formats",
    "write_bytes": "speechmodel.inference.writing",
    "encode_text": "speechmodel.inference.writing",
    "write_text": "speechmodel.inference.writing",
    "VOICING_THRESHOLD": "speechmodel.signal",
    "VOICING_FLOOR_DB": "speechmodel.signal",
    "VoicingDetector": "speechmodel.signal",
    "voiced_frames": "speechmodel.signal",
    "stream_windows": "speechmodel.signal",
    "EXIT_OK": "speechmodel.cli.common",
    "EXIT_FILES_FAILED": "speechmodel.cli.common",
    "EXIT_USAGE": "speechmodel.cli.common",
    "EXIT_ERROR": "speechmodel.cli.common",
    "check_output": "speechmodel.cli.infer_command",
    "write_output": "speechmodel.cli.infer_command",
    "run": "speechmodel.cli.infer_command",
    "normalize_flag_names": "speechmodel.cli.flag_names",
}


@pytest.mark.parametrize("name", sorted(OLD_NAMES))
def test_every_old_name_is_still_importable(name):
    namespace = {}
    exec(f"from speechmodel.inference import {name}", namespace)
    assert namespace[name] is getattr(importlib.import_module(OLD_NAMES[name]), name)
    assert name in inference.__all__ and name in dir(inference)


def test_exit_statuses_and_unknown_names():
    assert (inference.EXIT_OK, inference.EXIT_FILES_FAILED, inference.EXIT_USAGE, inference.EXIT_ERROR) == (0, 1, 2, 3)
    with pytest.raises(AttributeError, match="has no attribute 'nonesuch'"):
        inference.nonesuch  # noqa: B018


def test_the_toolkit_root_still_finds_its_inference_names():
    import speechmodel

    assert speechmodel.Failure is inference.Failure and speechmodel.ModelError is inference.ModelError
