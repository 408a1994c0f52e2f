"""Evaluation reports (Tables 1 and 2), the comparison grid, the metrics/evaluate CLI and bad input."""

import hashlib
import json
import math
import os
import time

import keras
import numpy as np
import pytest

import ssp_keras.cli.main as cli_main
from ssp_keras.data.io import read_image, write_image
from ssp_keras.data.synthetic import generate_pair
from ssp_keras.errors import InputError
from ssp_keras.evaluation.report import (
    ORIGINAL,
    TABLE1_METRICS,
    TABLE2_METRICS,
    Timer,
    evaluate,
    grid_size,
    no_reference_metrics,
)
from ssp_keras.networks import SSPGenerator
from tiny import TINY_GENERATOR

SIZE = 256  # NIQE needs whole 96x96 blocks; 256 gives four
NAMES = ("scan_a", "scan_b", "scan_c")


def _tiny_generator():
    keras.utils.set_random_seed(0)
    return SSPGenerator(channels=1, **TINY_GENERATOR, name="tiny")


def _threshold_segmenter():
    """A fixed 'segmenter': sigmoid(20 (x - 0.35)), bright pixels are fibre. Any [N,H,W,C] -> [N,H,W,1] model works."""
    inputs = keras.Input((None, None, 1))
    layer = keras.layers.Conv2D(1, 1, activation="sigmoid")
    model = keras.Model(inputs, layer(inputs))
    layer.set_weights([np.full((1, 1, 1, 1), 20.0, np.float32), np.array([-7.0], np.float32)])
    return model


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """Three synthetic LQ images (256 px), their fibre labels and full field-of-view masks."""
    root = tmp_path_factory.mktemp("data")
    for index, name in enumerate(NAMES):
        lq, _, mask = generate_pair(np.random.default_rng([7, index]), SIZE)
        write_image(str(root / "images" / f"{name}.png"), lq)
        write_image(str(root / "labels" / f"{name}.png"), mask.astype(np.float32))
        write_image(str(root / "fov" / f"{name}.png"), np.ones((SIZE, SIZE), np.float32))
    return root


def _hashes(folder):
    return {
        os.path.relpath(os.path.join(where, name), folder): hashlib.sha256(open(os.path.join(where, name), "rb").read()).hexdigest()
        for where, _, names in os.walk(folder)
        for name in names
    }


@pytest.fixture(scope="module")
def full_report(dataset, tmp_path_factory):
    before = _hashes(dataset)
    out = tmp_path_factory.mktemp("reports") / "full"
    result = evaluate(
        _tiny_generator(), str(dataset / "images"), str(out), labels=str(dataset / "labels"),
        masks=str(dataset / "fov"), segmenter=_threshold_segmenter(), max_grid_rows=2,
    )
    return result, out, before


def test_every_method_has_every_table1_and_table2_metric(full_report):
    result, out, _ = full_report
    methods = [ORIGINAL, "clahe", "dcp", "ssp-net"]
    assert result.methods == methods and result.images == list(NAMES)
    data = json.loads((out / "report.json").read_text())
    assert data["methods"] == methods and data["images"] == list(NAMES)
    for table, metrics in (("table1", TABLE1_METRICS), ("table2", TABLE2_METRICS)):
        assert set(data[table]) == set(methods)
        for method in methods:
            assert set(data[table][method]) == set(metrics)
            for metric in metrics:
                summary = data[table][method][metric]
                assert math.isfinite(summary["mean"]) and math.isfinite(summary["std"]), (table, method, metric)
                assert summary["count"] == 3 and summary["std"] >= 0
    # Table entries are the mean and (ddof=0) std of the per-image values.
    values = [data["per_image"]["clahe"][name]["piqe"] for name in NAMES]
    assert data["table1"]["clahe"]["piqe"]["mean"] == pytest.approx(np.mean(values))
    assert data["table1"]["clahe"]["piqe"]["std"] == pytest.approx(np.std(values))
    assert result.table1["clahe"]["piqe"].mean == pytest.approx(np.mean(values))
    # The timing of every metric is recorded, each call counted; together they fit in the run's time.
    timings = data["timing"]["metrics"]
    for metric in TABLE1_METRICS + ("segmentation",):
        assert timings[metric]["calls"] == 3 * len(methods)
    assert 0 < sum(timing["total_s"] for timing in timings.values()) <= data["timing"]["total_s"] + 1e-3


def test_timer_accumulates_seconds_and_calls_per_step(monkeypatch):
    clock = iter([10.0, 10.5, 20.0, 20.25, 30.0, 31.0])  # start, end of each of three calls
    monkeypatch.setattr(time, "perf_counter", lambda: next(clock))
    timer = Timer()
    assert timer.run("niqe", lambda x: x + 1, 1) == 2
    timer.run("niqe", lambda: None)
    with pytest.raises(ZeroDivisionError):  # a failing call is timed too, and its error passes on
        timer.run("piqe", lambda: 1 / 0)
    assert timer.summary() == {"niqe": {"calls": 2, "total_s": 0.75, "mean_ms": 375.0},
                               "piqe": {"calls": 1, "total_s": 1.0, "mean_ms": 1000.0}}


def test_markdown_has_both_tables_and_the_precision_footnote(full_report):
    result, out, _ = full_report
    text = (out / "report.md").read_text()
    assert text == result.markdown()
    assert "Table 1" in text and "Table 2" in text
    for label in ("Entropy ↑", "AvG ↑", "NIQE ↓", "PIQE ↓", "AUC ↑", "Dice ↑", "G-mean ↑", "Kappa ↑", "Precision"):
        assert label in text
    assert "FDR" in text and "[^precision]:" in text
    header = next(line for line in text.splitlines() if line.startswith("| Metric |"))
    assert header == "| Metric | original | clahe | dcp | ssp-net |"


def test_enhanced_images_are_written_and_inputs_untouched(full_report, dataset):
    result, out, before = full_report
    assert _hashes(dataset) == before
    for method in result.methods:
        assert sorted(os.listdir(out / method)) == [f"{name}.png" for name in NAMES]
    # The original column is the input itself (8-bit PNG in, 8-bit PNG out).
    np.testing.assert_array_equal(read_image(str(out / ORIGINAL / "scan_a.png")), read_image(str(dataset / "images" / "scan_a.png")))
    assert not [name for name in os.listdir(out) if name.startswith(".tmp")]
    pairs = result.image_pairs("model")
    assert pairs[0] == (str(dataset / "images" / "scan_a.png"), str(out / "ssp-net" / "scan_a.png"))
    assert all(os.path.isfile(enhanced) for _, enhanced in pairs)


def test_grid_has_one_row_per_image_and_one_column_per_method(full_report):
    result, out, _ = full_report
    grid = read_image(str(out / "comparison.png"))
    assert (result.grid["rows"], result.grid["columns"]) == (2, 4)  # max_grid_rows=2 of 3 images
    assert grid.shape[:2] == grid_size(2, 4, result.grid["cell_size"])
    assert result.grid["row_names"] == ["scan_a", "scan_b"] and result.grid["column_names"] == result.methods


def test_metrics_cli_json_matches_the_library_and_the_report(full_report, dataset, monkeypatch, capsys):
    result, _, _ = full_report
    path = str(dataset / "images" / "scan_b.png")
    monkeypatch.setattr(cli_main, "SUBCOMMANDS", ("metrics", "evaluate", "segmenter"))
    assert cli_main.main(["metrics", "--json", path]) == 0
    printed = json.loads(capsys.readouterr().out)
    row = printed["images"][0]
    assert row["path"] == path
    library = no_reference_metrics(read_image(path))
    for metric in TABLE1_METRICS:
        assert row[metric] == pytest.approx(library[metric], rel=1e-12)
        assert row[metric] == pytest.approx(result.per_image[ORIGINAL]["scan_b"][metric], rel=1e-9)
    assert cli_main.main(["metrics", path]) == 0
    table = capsys.readouterr().out
    assert "NIQE" in table and f"{library['piqe']:.4f}" in table


def test_report_without_labels_or_model_has_no_table2(dataset, tmp_path):
    result = evaluate(None, str(dataset / "images"), str(tmp_path / "r"), baselines=("clahe",))
    assert result.methods == [ORIGINAL, "clahe"] and result.table2 is None
    data = json.loads((tmp_path / "r" / "report.json").read_text())
    assert data["table2"] is None and data["grid"]["rows"] == 3
    assert "Table 2" not in (tmp_path / "r" / "report.md").read_text()


def test_small_images_have_no_niqe_and_say_so(tmp_path):
    write_image(str(tmp_path / "in" / "small.png"), np.random.default_rng(0).random((64, 80), np.float32))
    result = evaluate(None, str(tmp_path / "in"), str(tmp_path / "r"), baselines=())
    assert result.table1[ORIGINAL]["niqe"].count == 0
    assert math.isfinite(result.table1[ORIGINAL]["piqe"].mean)
    assert json.loads((tmp_path / "r" / "report.json").read_text())["per_image"][ORIGINAL]["small"]["niqe"] is None
    assert any("NIQE" in note and "96x96" in note for note in result.notes)


@pytest.mark.slow
def test_labels_without_segmenter_train_a_quick_one(dataset, tmp_path):
    tiny = dict(epochs=1, steps_per_epoch=2, image_size=32, batch_size=2, base_width=4, depth=2, synthetic_count=2, synthetic_size=64)
    result = evaluate(None, str(dataset / "images"), str(tmp_path / "r"), labels=str(dataset / "labels"), baselines=(),
                      quick_segmenter=tiny)
    assert result.table2 is not None
    assert os.path.isfile(tmp_path / "r" / "segmenter" / "segmenter.keras")
    assert "synthetic" in result.sources["segmenter"]


def test_bad_input_names_the_culprit(dataset, tmp_path):
    images = str(dataset / "images")
    with pytest.raises(InputError, match="missing"):
        evaluate(None, str(tmp_path / "missing"), str(tmp_path / "r"))
    with pytest.raises(InputError, match="nolabels"):
        evaluate(None, images, str(tmp_path / "r"), labels=str(tmp_path / "nolabels"))
    with pytest.raises(InputError, match="input folder"):
        evaluate(None, images, str(dataset / "images" / "report"))
    with pytest.raises(InputError, match="unknown baseline"):
        evaluate(None, images, str(tmp_path / "r"), baselines=("sharpen",))

    labels = tmp_path / "labels"
    for name in NAMES:
        write_image(str(labels / f"{name}.png"), np.zeros((SIZE, SIZE), np.float32))
    write_image(str(labels / "stray.png"), np.zeros((SIZE, SIZE), np.float32))
    with pytest.raises(InputError, match="stray.png"):
        evaluate(None, images, str(tmp_path / "r"), labels=str(labels), segmenter=_threshold_segmenter())
    os.remove(labels / "stray.png")
    os.remove(labels / "scan_c.png")
    with pytest.raises(InputError, match="scan_c.png"):
        evaluate(None, images, str(tmp_path / "r"), labels=str(labels), segmenter=_threshold_segmenter())

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "bad.png").write_bytes(b"this is not a PNG")
    with pytest.raises(InputError, match="bad.png"):
        evaluate(None, str(broken), str(tmp_path / "r2"), baselines=())


def test_cli_turns_bad_input_into_one_line_and_exit_code_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cli_main, "SUBCOMMANDS", ("metrics", "evaluate", "segmenter"))
    missing = str(tmp_path / "nowhere")
    assert cli_main.main(["evaluate", "--images", missing, "--out", str(tmp_path / "r")]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and missing in error
    assert cli_main.main(["metrics", str(tmp_path / "none.png")]) == 2
    assert "none.png" in capsys.readouterr().err


def test_a_report_folder_is_replaced_only_when_asked_and_then_wholly(dataset, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cli_main, "SUBCOMMANDS", ("evaluate",))
    out = tmp_path / "r"
    argv = ["evaluate", "--images", str(dataset / "images"), "--out", str(out), "--quiet"]
    assert cli_main.main(argv + ["--baselines", "clahe,dcp"]) == 0
    before = _hashes(out)
    capsys.readouterr()
    assert cli_main.main(argv + ["--baselines", "clahe"]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert lines == [f"ssp-net evaluate: error: '{out}' already holds a report ({len(before)} file(s), first "
                     f"'{out / 'report.md'}'); pass --overwrite to replace it (its files are removed first), or "
                     "choose another --out"]
    assert _hashes(out) == before
    assert cli_main.main(argv + ["--baselines", "clahe", "--overwrite"]) == 0
    assert sorted(os.listdir(out)) == ["clahe", "comparison.png", ORIGINAL, "report.json", "report.md"]  # no dcp/
    assert json.loads((out / "report.json").read_text())["methods"] == [ORIGINAL, "clahe"]


def test_labels_of_another_size_are_refused_before_any_segmenter_training(dataset, tmp_path, monkeypatch, capsys):
    from ssp_keras.segmentation import training as segmenter_training

    monkeypatch.setattr(segmenter_training, "train_segmenter", lambda *args, **kwargs: pytest.fail("trained first"))
    monkeypatch.setattr(cli_main, "SUBCOMMANDS", ("evaluate",))
    labels = tmp_path / "labels"
    for name in NAMES:
        write_image(str(labels / f"{name}.png"), np.zeros((SIZE, SIZE if name != "scan_b" else SIZE // 2), np.float32))
    out = tmp_path / "r"
    assert cli_main.main(["evaluate", "--images", str(dataset / "images"), "--labels", str(labels),
                          "--out", str(out)]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert lines == [f"ssp-net evaluate: error: '{labels / 'scan_b.png'}' is {SIZE}x{SIZE // 2} but its image is "
                     f"{SIZE}x{SIZE}"]
    assert not out.exists()


def _mixed_folder(dataset, tmp_path):
    """A folder of one good image, a 1x1 one and a file that is no image."""
    folder = tmp_path / "mixed"
    folder.mkdir()
    write_image(str(folder / "good.png"), read_image(str(dataset / "images" / "scan_a.png")))
    write_image(str(folder / "dot.png"), np.zeros((1, 1), np.float32))
    (folder / "broken.png").write_bytes(b"not a PNG")
    return folder


def test_metrics_skips_files_it_cannot_measure_naming_them(dataset, tmp_path, monkeypatch, capsys, caplog):
    import logging

    monkeypatch.setattr(cli_main, "SUBCOMMANDS", ("metrics",))
    folder = _mixed_folder(dataset, tmp_path)
    with caplog.at_level(logging.WARNING):
        assert cli_main.main(["metrics", str(folder), "--json"]) == 3
    data = json.loads(capsys.readouterr().out)
    assert [row["path"] for row in data["images"]] == [str(folder / "good.png")]
    assert [item["path"] for item in data["skipped"]] == [str(folder / "broken.png"), str(folder / "dot.png")]
    assert "2x2 pixels, got 1x1" in data["skipped"][1]["reason"]
    warnings = [record.getMessage() for record in caplog.records]
    assert any(f"skipping '{folder / 'dot.png'}'" in line for line in warnings)
    assert any(f"skipping '{folder / 'broken.png'}'" in line for line in warnings)
    # Nothing measurable at all: bad input, one line.
    os.remove(folder / "good.png")
    assert cli_main.main(["metrics", str(folder)]) == 2
    assert "no image could be measured: all 2 file(s) were skipped" in capsys.readouterr().err


def test_evaluate_leaves_out_images_it_cannot_read_or_measure_naming_them(dataset, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cli_main, "SUBCOMMANDS", ("evaluate",))
    folder = _mixed_folder(dataset, tmp_path)
    assert cli_main.main(["evaluate", "--images", str(folder), "--baselines", "clahe", "--out", str(tmp_path / "r"),
                          "--quiet"]) == 3
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert report["images"] == ["good"] and report["inputs"] == [str(folder / "good.png")]
    assert [item["path"] for item in report["skipped"]] == [str(folder / "broken.png"), str(folder / "dot.png")]
    assert sorted(os.listdir(tmp_path / "r" / ORIGINAL)) == ["good.png"]  # nothing of the skipped ones
    assert "2 unreadable image(s) left out" in capsys.readouterr().out
