"""The example notebook runs in a fresh Jupyter kernel and shows what a user should see."""

import json
import os

import pytest

nbclient = pytest.importorskip("nbclient")
nbformat = pytest.importorskip("nbformat")

NOTEBOOK = os.path.join(os.path.dirname(__file__), os.pardir, "examples", "notebook.ipynb")
LOG_NOISE = (
    "I0000",
    "E0000",
    "W0000",
    "oneDNN",
    "cuda",
    "absl::InitializeLog",
    "Warning",
    "deprecated",
)


def _outputs(notebook) -> list[dict]:
    return [out for cell in notebook.cells if cell.cell_type == "code" for out in cell.outputs]


@pytest.mark.slow  # a fresh kernel runs a 4-trial search and exports: over a minute
def test_notebook_shows_progress_summary_plots_and_no_log_noise(tmp_path):
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        notebook,
        timeout=900,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()
    outputs = _outputs(notebook)
    stdout = "".join(o.text for o in outputs if o.output_type == "stream" and o.name == "stdout")
    stderr = "".join(o.text for o in outputs if o.output_type == "stream" and o.name == "stderr")
    assert stderr == ""  # nothing a notebook would show as error text
    assert not [word for word in LOG_NOISE if word in stdout], stdout[-2000:]
    assert "search: 4/4 trials" in stdout and "best val_accuracy=" in stdout  # the bar
    assert "[automl] trial 3: val_accuracy=" in stdout  # a line per trial
    html = [o.data["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    assert any("ImageClassifier</b> (fitted)" in h for h in html)  # the estimator's summary
    assert any("trial_id" in h and "morphism" in h for h in html)  # the summary table
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == 2  # plot_search and plot_architecture
    assert "digits.tflite accuracy:" in stdout
    difference = float(stdout.split("max difference from predict_proba:")[1].split()[0])
    assert difference <= 1e-5
    assert (tmp_path / "digits.tflite").exists() and (tmp_path / "digits.onnx").exists()


def test_saved_notebook_has_its_outputs():
    """The notebook in the repository is saved executed, so a reader sees the outputs."""
    with open(NOTEBOOK) as f:
        notebook = json.load(f)
    code = [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]
    assert all(cell.get("execution_count") for cell in code)
    assert sum("image/png" in out.get("data", {}) for cell in code for out in cell["outputs"]) == 2
