"""The router lab: train the quality router (``kanjia.routing.quality``) from recorded
outcomes, evaluate it offline, search cascades, check code answers in a jail, read the
RouterBench and RouteLLM data, and plot the results. Offline research code, installed with
``pip install 'kanjia[lab]'`` (pandas, pyarrow, SciPy, matplotlib); the gateway never
imports it.

    data = load_dataset("routerbench")
    router = train_router(data, TrainOptions())
    router.save("router.npz")                 # what the gateway's quality_router loads
    print(format_summary(evaluate(router, data)))
"""

from kanjia.lab._codecheck import CodeChecker, CodeCheckUnavailable, SandboxLimits
from kanjia.lab._dataset import Dataset
from kanjia.lab._evaluate import evaluate
from kanjia.lab._loading import data_root, load_dataset
from kanjia.lab._plot import plot_report
from kanjia.lab._summary import format_summary
from kanjia.lab._train import TrainOptions, train_router

__all__ = [
    "CodeCheckUnavailable",
    "CodeChecker",
    "Dataset",
    "SandboxLimits",
    "TrainOptions",
    "data_root",
    "evaluate",
    "format_summary",
    "load_dataset",
    "plot_report",
    "train_router",
]

