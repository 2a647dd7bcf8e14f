"""The quality router: which model will answer this prompt well, learned from recorded
outcomes, with the cascade objective and the offline evaluation (issue 8).

Run time::

    router = QualityRouter.load(path)
    router.predict(prompt, task)                      # {model: P(good answer)}
    router.choose(prompt, [(model, cost), ...], quality_target, task)
    run = router.start(prompt, task, weight)          # cascade: next_model/observe/answer
"""

from kanjia.routing.quality._cascade import CascadePolicy, CascadeRun
from kanjia.routing.quality._codecheck import CodeChecker, CodeCheckUnavailable, SandboxLimits
from kanjia.routing.quality._dataset import Dataset
from kanjia.routing.quality._evaluate import evaluate
from kanjia.routing.quality._loading import data_root, load_dataset
from kanjia.routing.quality._plot import plot_report
from kanjia.routing.quality._router import QualityRouter
from kanjia.routing.quality._summary import format_summary
from kanjia.routing.quality._train import TrainOptions, train_router

__all__ = [
    "CascadePolicy",
    "CascadeRun",
    "CodeCheckUnavailable",
    "CodeChecker",
    "Dataset",
    "QualityRouter",
    "SandboxLimits",
    "TrainOptions",
    "data_root",
    "evaluate",
    "format_summary",
    "load_dataset",
    "plot_report",
    "train_router",
]
