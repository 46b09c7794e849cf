import types

from speechmodel.training.summary import fold_line, headline

METRICS = {"uar": 1.0, "wa": 1.0, "n": 16, "fold_uar_mean": 1.0, "fold_uar_std": 0.0,
           "speaker_independent": True}


def _config(init_from=None):
    return {"dataset": {"name": "ravdess"}, "model": {"name": "speechmodel"},
            "protocol": {"name": "kfold"}, "training": {"init_from": init_from}}


def test_a_plain_run_says_its_figures_only():
    line = headline(_config(), METRICS, "runs/x")
    assert line == ("ravdess speechmodel kfold: UAR 100.00 %  WA 100.00 %  (pooled over 16 test "
                    "utterances; per-fold UAR 100.00 +- 0.00) -> runs/x")


def test_the_headline_says_what_kind_of_figure_it_is():
    adapted = dict(METRICS, speaker_normalization={"per_clip_uar": 0.7207, "per_clip_wa": 0.7326},
                   speaker_independent=False)
    line = headline(_config(init_from="default"), adapted, "runs/x")
    first, *kinds = line.split("\n")
    assert first.startswith("ravdess speechmodel kfold: UAR 100.00 %")
    assert kinds == [
        "  (speaker-adapted, transductive: each test speaker standardised with their own "
        "recordings; per clip UAR 72.07 %  WA 73.26 %)",
        "  (NOT speaker independent: a random split mixes speakers)",
        "  (fine-tuned from default: speaker independent only if that model never heard these "
        "test speakers (the shipped default was trained on RAVDESS and nEMO))",
    ]


def test_the_fold_line_counts_the_files_it_skipped():
    fold = types.SimpleNamespace(name="fold1", test_speakers=("01",))
    result = {"test": {"uar": 0.5, "wa": 0.5, "failed_files": 0}, "failed_files": []}
    assert "skipped" not in fold_line(1, 2, fold, result, [result], "3 s")
    result["failed_files"] = [["/c/Actor_02/one.wav", "too short to analyse: 1 sample"]]
    line = fold_line(1, 2, fold, result, [result], "3 s")
    assert line.endswith("(3 s); 1 file skipped (named above and in the fold's result.json)")
