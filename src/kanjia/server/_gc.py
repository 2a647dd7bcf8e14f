"""The cyclic garbage collector, tuned for a long-running gateway process.

At start-up the process loads the catalog, the tokenizers and the routing tables:
hundreds of thousands of objects that live as long as the process. Every full
collection walked all of them (about 45 ms each), and young collections ran every
700 net allocations, a count that requests in flight reach by themselves, so the
collector took about 9% of a saturated gateway's CPU. After start-up we collect
once, freeze the survivors (``gc.freeze``: never scanned again) and raise the
young-generation threshold; cycles made while serving are still collected.
"""

from __future__ import annotations

import gc

__all__ = ["tune_gc"]


def tune_gc(threshold0: int) -> None:
    """Freeze what start-up loaded and collect young objects every ``threshold0``
    net allocations (0: leave the collector as it is)."""
    if threshold0 <= 0:
        return
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(threshold0, older, oldest)
