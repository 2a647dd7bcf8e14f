"""Deferrable work: requests held until the chosen vendor's cheaper window opens."""

from kanjia.batch._queue import Job, JobQueue
from kanjia.batch._runner import BatchRunner, Sender
from kanjia.batch._schedule import Schedule, schedule

__all__ = ["BatchRunner", "Job", "JobQueue", "Schedule", "Sender", "schedule"]
