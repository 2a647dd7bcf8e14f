"""The quality router as the gateway runs it: which model will answer this prompt well,
learned from recorded outcomes, and the cascade objective (issue 8). Training, evaluation,
the data readers, plots and the code-check jail are the router lab (``kanjia.lab``,
``pip install 'kanjia[lab]'``); nothing here imports it.

Run time::

    router = QualityRouter.load(path)
    router.predict(prompt, task)                      # {model: P(good answer)}
    router.choose(prompt, [(model, cost), ...], quality_target, task)
    run = router.start(prompt, task, weight)          # cascade: next_model/observe/answer
"""

from kanjia.routing.quality._cascade import AnswerChecker, CascadePolicy, CascadeRun
from kanjia.routing.quality._router import QualityRouter

__all__ = ["AnswerChecker", "CascadePolicy", "CascadeRun", "QualityRouter"]
