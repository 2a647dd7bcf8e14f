"""Deferrable work: requests held until the chosen vendor's cheaper window opens, and the
OpenAI-compatible Batch API whose lines go the cheapest way that meets their deadline
(now, an off-peak window, or the vendor's own batch API)."""

from kanjia.batch._engine import BatchEngine, BatchNotFound
from kanjia.batch._queue import Job, JobQueue
from kanjia.batch._runner import BatchRunner, Sender
from kanjia.batch._schedule import Schedule, schedule
from kanjia.batch._store import BatchStore, store_path
from kanjia.batch._ways import Way, choose_way

__all__ = ["BatchEngine", "BatchNotFound", "BatchRunner", "BatchStore", "Job", "JobQueue",
           "Schedule", "Sender", "Way", "choose_way", "schedule", "store_path"]
