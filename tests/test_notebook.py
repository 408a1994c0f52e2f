"""The Colab notebook runs end to end in quick mode, headlessly, and is stored without outputs.

The notebook is executed with nbclient on a kernel that runs this interpreter (a kernelspec written
to a temporary folder and found through JUPYTER_PATH), from the repository's ``notebooks/`` folder
like a local Jupyter would, with ``QUICK = True`` and ``OUTPUT_DIR`` injected after the
``parameters`` cell (papermill-style). Any failing cell fails the test. About 1 minute on two idle CPU
cores, 2 minutes when they are busy with other work.
"""

import json
import os
import pathlib
import sys

import pytest

REPOSITORY = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOK = REPOSITORY / "notebooks" / "ssp_net_colab.ipynb"
KERNEL_NAME = "ssp-keras-notebook-test"
CELL_TIMEOUT_S = 600  # generous: the slowest cell (training or export) takes under a minute


def _load_notebook():
    import nbformat

    return nbformat.read(str(NOTEBOOK), as_version=4)


def _parameters_index(notebook) -> int:
    tagged = [
        index
        for index, cell in enumerate(notebook.cells)
        if cell.cell_type == "code" and "parameters" in cell.metadata.get("tags", [])
    ]
    assert len(tagged) == 1, f"expected one code cell tagged 'parameters', found {len(tagged)}"
    return tagged[0]


def _write_kernelspec(folder: pathlib.Path, ipython_dir: pathlib.Path) -> None:
    """A kernelspec that starts ipykernel with this very interpreter (no PATH lookup)."""
    spec_dir = folder / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "ssp-keras notebook test",
        "language": "python",
        "env": {
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "CUDA_VISIBLE_DEVICES": "",  # CPU, as the rest of the suite
            "IPYTHONDIR": str(ipython_dir),  # no user profile or start-up scripts
        },
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec), encoding="utf-8")


def _snapshot(folder: pathlib.Path) -> set:
    return {str(path.relative_to(folder)) for path in folder.rglob("*")}


def test_notebook_is_stored_clean():
    notebook = _load_notebook()
    _parameters_index(notebook)
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"cell {index} has stored outputs: clear them before committing"
            assert cell.execution_count is None, f"cell {index} has an execution count: clear outputs"
    first = notebook.cells[0]
    assert first.cell_type == "markdown"
    assert "colab.research.google.com/github/" in first.source
    assert "notebooks/ssp_net_colab.ipynb" in first.source


@pytest.mark.slow
def test_notebook_runs_in_quick_mode(tmp_path, monkeypatch):
    import ipykernel  # noqa: F401  (the kernel the notebook runs in)
    import nbclient
    import nbformat

    notebook = _load_notebook()
    output_dir = tmp_path / "out"
    injected = nbformat.v4.new_code_cell(f"QUICK = True\nOUTPUT_DIR = {str(output_dir)!r}")
    injected.metadata["tags"] = ["injected-parameters"]
    notebook.cells.insert(_parameters_index(notebook) + 1, injected)

    jupyter_path = tmp_path / "jupyter"
    _write_kernelspec(jupyter_path, tmp_path / "ipython")
    monkeypatch.setenv("JUPYTER_PATH", str(jupyter_path))
    monkeypatch.delenv("SSP_KERAS_MODELS", raising=False)

    watched = [REPOSITORY / "data", REPOSITORY / "notebooks"]
    before = [_snapshot(folder) for folder in watched]

    client = nbclient.NotebookClient(
        notebook,
        kernel_name=KERNEL_NAME,
        timeout=CELL_TIMEOUT_S,
        startup_timeout=180,
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )
    client.execute()  # raises CellExecutionError, naming the cell, if any cell fails

    text = "\n".join(
        output.get("text", "")
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if output.get("output_type") == "stream"
    )
    assert "quick mode: True" in text
    assert "serving_default:" in text and "enhance_png:" in text
    assert (output_dir / "before_after.png").is_file()
    assert (output_dir / "generator.keras").is_file()
    metrics = (output_dir / "metrics.md").read_text(encoding="utf-8")
    for name in ("Original", "CLAHE", "DCP", "SSP-Net", "Entropy", "AvG", "NIQE", "PIQE"):
        assert name in metrics
    assert any(path.name.startswith("events.out.tfevents") for path in (output_dir / "logs").rglob("*"))
    assert (output_dir / "serving" / "ssp_net" / "1" / "saved_model.pb").is_file()
    # everything went to OUTPUT_DIR: nothing new in the repository's data/ or notebooks/
    assert [_snapshot(folder) for folder in watched] == before
