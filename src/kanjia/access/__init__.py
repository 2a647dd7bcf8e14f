"""Who may call, what they may spend: one policy, built once and passed in.

- ``AccessPolicy``: what the gateway asks before a call (``authenticate``, ``may_use``,
  ``reserve``) and after it (``settle``, ``release``); ``Principal``: who is calling.
- ``OpenAccess``: no virtual keys (anyone may call, or only the master key holder).
- ``KeyedAccess``: virtual keys, budgets and rate limits, over the ledger's
  ``metering.Gatekeeper``.
- ``access_policy``: the one of the two a gateway's settings ask for.

The master key is compared by ``kanjia.metering.is_master_key`` only.
"""

from __future__ import annotations

from kanjia.access._keyed import KeyedAccess
from kanjia.access._open import OpenAccess
from kanjia.access._policy import OPERATOR, AccessPolicy, Principal, Reservation
from kanjia.metering import Gatekeeper, WorstCase

__all__ = ["OPERATOR", "AccessPolicy", "KeyedAccess", "OpenAccess", "Principal", "Reservation",
           "WorstCase", "access_policy"]


def access_policy(gate: Gatekeeper | None, *, master_key: str | None,
                  require_keys: bool) -> AccessPolicy:
    """Keyed over ``gate`` (a gateway with a ledger: ``require_keys`` and the master key
    are the Gatekeeper's own), else open: ``require_keys`` then admits the master key only."""
    if gate is not None:
        return KeyedAccess(gate)
    return OpenAccess(master_key, require_keys)
