"""CNN training benchmark: the fused optimizers training a small CNN on real images.

    from benchmarks.cnn import run_cnn, write_cnn_report
    rows = run_cnn(None, seeds=3, epochs=None, dataset="digits", data_dir=None, out_dir="results/cnn")
    write_cnn_report("results/cnn/cnn_epochs.csv", "results/cnn")     # cnn.md, *.png

data.py loads the images (digits bundled with scikit-learn; MNIST, Fashion-MNIST, CIFAR-10 from local
files), model.py holds the CNN, train.py one run (single process or DDP), sweep.py the protocol (lr
sweep, then seeds), store.py the per-run files that make it resumable, tables.py, plots.py and report.py
the outputs from the CSV alone, ddp.py the torchrun entry point. See README.md for the columns.
"""

from .data import DATASETS, DataFileError, DataNotFoundError, ImageData, load_dataset
from .report import write_cnn_report
from .store import RunKey, resumable_run
from .sweep import BUDGETS, Budget, lr_grid, run_cnn, select_lr
from .train import RunResult, World, train_run

__all__ = [
    "BUDGETS",
    "DATASETS",
    "Budget",
    "DataFileError",
    "DataNotFoundError",
    "ImageData",
    "RunKey",
    "RunResult",
    "World",
    "load_dataset",
    "lr_grid",
    "resumable_run",
    "run_cnn",
    "select_lr",
    "train_run",
    "write_cnn_report",
]
