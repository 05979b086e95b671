"""Execute `examples/notebook.ipynb` from top to bottom and save it with its outputs.

Run: python examples/run_notebook.py [--output PATH]

The notebook runs in a fresh Jupyter kernel (`ipykernel`), in a scratch folder, so
the search's files and exported models land there, not beside the notebook.
"""

import argparse
import os
import tempfile

import nbclient
import nbformat

HERE = os.path.dirname(os.path.abspath(__file__))


def execute(path: str, folder: str, timeout: int = 900):
    """The notebook at `path`, executed in `folder`."""
    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        notebook, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": folder}}
    )
    client.execute()
    return notebook


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default=os.path.join(HERE, "notebook.ipynb"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        executed = execute(os.path.join(HERE, "notebook.ipynb"), scratch)
    nbformat.write(executed, args.output)
    print(f"executed notebook saved to {args.output}")
