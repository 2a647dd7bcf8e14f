"""``GET /v1/kanjia/jobs/{id}``: a deferred request's job, for the key that queued it.

A job stores a hash of the API key that queued it (``job_owner``). It is shown to that key
or the admin key; anyone else gets the same 404 as for a job that does not exist. A job
queued without a key (an open gateway, or ``kanjia batch submit``) is shown to callers
without a key as long as the gateway still lets them in. Reading never creates the queue's
database.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from typing import TYPE_CHECKING

from kanjia.errors import KanjiaError, MethodNotAllowed, ModelNotFound
from kanjia.server import _asgi
from kanjia.server._asgi import Receive, Scope, Send

if TYPE_CHECKING:
    from kanjia.server.app import KanjiaApp

__all__ = ["JOBS_PREFIX", "job_handler", "job_owner"]

JOBS_PREFIX = "/v1/kanjia/jobs/"


def job_owner(key: str | None) -> str | None:
    """What a deferred job stores of the key that queued it (a hash, never the key)."""
    return hashlib.sha256(key.encode()).hexdigest() if key else None


async def job_handler(app: KanjiaApp, scope: Scope, receive: Receive, send: Send) -> None:
    if scope["method"] != "GET":
        raise MethodNotAllowed(f"{scope['path']} answers GET only", allow=("GET",))
    jid = scope["path"][len(JOBS_PREFIX):]
    queue = await app.existing_batch_queue()
    job = await asyncio.to_thread(queue.get, jid) if queue is not None else None
    if queue is not None and job is not None and not app.is_admin(scope):
        key = app.caller_key(scope)
        owner = await asyncio.to_thread(queue.owner, jid)
        if owner is None:  # queued without a key: whoever this gateway lets in keyless
            mine = key is None and await _anonymous_ok(app, job.model)
        else:
            mine = hmac.compare_digest((job_owner(key) or "").encode(), owner.encode())
        job = job if mine else None
    if job is None:
        raise ModelNotFound(f"no deferred job {jid!r}")
    await _asgi.send_json(send, 200, job.as_dict())


async def _anonymous_ok(app: KanjiaApp, model: str) -> bool:
    try:
        principal = await app.services.access.authenticate(None, model)
    except KanjiaError:
        return False
    return principal.key_id is None
