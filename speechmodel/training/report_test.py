import json

from speechmodel.training import report


def _run(directory, *, uar=0.5, final=True, protocol="kfold"):
    directory.mkdir()
    config = {"model": {"name": "svm"}, "protocol": {"name": protocol}, "training": {}}
    metrics = {
        "dataset": "ravdess", "speaker_independent": True, "uar": uar, "wa": 0.6, "n": 32,
        "fold_uar_mean": uar, "fold_uar_std": 0.0,
        "folds": [{"uar": uar, "val_uar": None, "seconds": 60.0}, {"uar": uar, "val_uar": None, "seconds": 60.0}],
    }
    if final:
        metrics["final_model"] = {"path": "model.skz"}
        (directory / "model.skz").write_bytes(b"model")
    (directory / "config.json").write_text(json.dumps(config))
    (directory / "metrics.json").write_text(json.dumps(metrics))
    return directory


def test_unfinished_and_failed_runs_are_skipped_with_a_warning_and_the_table_printed(tmp_path, capsys):
    done = _run(tmp_path / "done")
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / "config.json").write_text("{}")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "metrics.json").write_text('{"uar": 0.5')  # cut short
    (broken / "config.json").write_text("{}")
    wrong = _run(tmp_path / "wrong")
    (wrong / "metrics.json").write_text(json.dumps({"folds": None}))
    table = tmp_path / "table.json"
    code = report.main([str(unfinished), str(done), str(broken), str(wrong), "--json", str(table)])
    captured = capsys.readouterr()
    assert code == 0
    warnings = captured.err.splitlines()
    assert len(warnings) == 3 and all(w.startswith("report: skipping ") for w in warnings)
    assert "no metrics.json (the run has not finished)" in warnings[0]
    assert str(broken) in warnings[1] and str(wrong) in warnings[2]
    lines = captured.out.splitlines()
    assert len(lines) == 3 and lines[2].startswith("| svm on statistics features | ravdess | kfold | 2 | 50.00 |")
    [row] = json.loads(table.read_text())
    assert row["deployable_model"] == str(done / "model.skz")
    assert lines[2].rstrip(" |").endswith(str(done / "model.skz"))


def test_a_run_without_a_deployable_model_has_an_empty_cell(tmp_path, capsys):
    run = _run(tmp_path / "run", final=False)
    assert report.main([str(run)]) == 0
    line = capsys.readouterr().out.splitlines()[2]
    assert line.endswith("| 32 |  |")
    assert report.main([str(tmp_path / "nothing")]) == 2


def test_a_speaker_normalised_run_says_so_and_adds_its_per_clip_figures(tmp_path, capsys):
    run = _run(tmp_path / "run", uar=0.8, final=False)
    metrics = json.loads((run / "metrics.json").read_text())
    metrics["speaker_normalization"] = {"uar": 0.8, "wa": 0.6, "per_clip_uar": 0.72, "per_clip_wa": 0.73}
    (run / "metrics.json").write_text(json.dumps(metrics))
    assert report.main([str(run)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "each test speaker with their own statistics (transductive) | ravdess | kfold | 2 | 80.00 |" in lines[2]
    assert lines[3].startswith("| the same model, per clip (an average training speaker's statistics) "
                               "| ravdess | kfold | 2 | 72.00 | 73.00 |")


def test_by_corpus_splits_the_pooled_predictions_by_the_corpus_of_each_file(tmp_path, capsys):
    run = _run(tmp_path / "run", final=False)
    metrics = json.loads((run / "metrics.json").read_text())
    metrics["class_names"] = ["angry", "sad"]
    (run / "metrics.json").write_text(json.dumps(metrics))
    (run / "manifest.csv").write_text(
        "path,corpus,emotion\n/a/1.wav,ravdess,angry\n/a/2.wav,ravdess,sad\n/b/1.opus,nemo,angry\n"
    )
    (run / "predictions.csv").write_text(
        "file,speaker,fold,true,predicted,p_angry,p_sad,predicted_per_clip\n"
        "/a/1.wav,01,f1,angry,angry,0.9,0.1,sad\n"
        "/a/2.wav,01,f1,sad,sad,0.2,0.8,sad\n"
        "/b/1.opus,EB0,f2,angry,sad,0.4,0.6,angry\n"
    )
    rows = {r["corpus"]: r for r in report.by_corpus(str(run))}
    assert (rows["ravdess"]["uar"], rows["ravdess"]["per_clip_uar"], rows["ravdess"]["n"]) == (1.0, 0.5, 2)
    assert (rows["nemo"]["wa"], rows["nemo"]["per_clip_wa"]) == (0.0, 1.0)
    assert report.main([str(run), "--by_corpus"]) == 0
    assert f"| {run} | nemo | 0.00 | 0.00 | 100.00 | 100.00 | 1 |" in capsys.readouterr().out


def test_a_calibrated_run_reports_its_ece_before_and_after(tmp_path, capsys):
    run = _run(tmp_path / "run", final=False)
    metrics = json.loads((run / "metrics.json").read_text())
    metrics["calibration"] = {"ece_before": 0.1234, "ece_after": 0.0456, "n": 32}
    (run / "metrics.json").write_text(json.dumps(metrics))
    assert report.main([str(run)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[3].startswith("| calibration: expected calibration error 12.34 % before, 4.56 % after "
                               "temperature scaling")


def test_a_classical_run_names_its_feature_set(tmp_path, capsys):
    run = _run(tmp_path / "run", final=False)
    config = json.loads((run / "config.json").read_text())
    config["training"] = {"classical": {"features": "egemaps", "speaker_normalization": True}}
    (run / "config.json").write_text(json.dumps(config))
    assert report.main([str(run)]) == 0
    assert capsys.readouterr().out.splitlines()[2].startswith("| svm on egemaps features | ravdess |")
