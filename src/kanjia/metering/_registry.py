"""Virtual keys, tenants and budgets in the database (the admin API and the CLI use it).

A key is ``kj-`` + 43 random URL-safe characters (256 bits); only its SHA-256 is
stored, with a short hint for humans. Budget ids are ``scope:subject:period``, so
setting a budget again replaces it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

import orjson

from kanjia.errors import BadRequest, ConfigError
from kanjia.ledger import from_nano, to_nano
from kanjia.ledger.store import Database, Step
from kanjia.metering._money import BudgetSpec, Period
from kanjia.metering._pricing import PriceList, Tenant, check_markup

__all__ = ["Budget", "Changes", "KeyInfo", "NotFound", "Registry", "Scope", "hash_key",
           "is_master_key", "new_secret"]

Scope = Literal["key", "tenant"]
_KEY_COLS = ("id, name, tenant, key_hash, hint, models, rpm, tpm, created_at, revoked_at, "
             "response_cache")
_BUDGET_COLS = "id, scope, subject, period, amount_nano, currency, deleted_at"
#: the largest rpm/tpm a key may have: the keys table's columns are INTEGER, 32 bits on
#: PostgreSQL (a larger value was a 500 there, not a 400)
_MAX_RATE = 2**31 - 1


class NotFound(LookupError):
    """No key, tenant or budget of that name."""


def new_secret() -> str:
    return "kj-" + secrets.token_urlsafe(32)


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def is_master_key(candidate: str | None, master: str | None) -> bool:
    """Whether ``candidate`` is the master key (constant time); never without one set.
    The one place kanjia compares a presented key with the master key."""
    if not master or not candidate:
        return False
    return hmac.compare_digest(candidate.encode(), master.encode())


@dataclass(frozen=True, slots=True)
class KeyInfo:
    id: str
    name: str
    tenant: str | None
    key_hash: str
    hint: str
    models: tuple[str, ...] | None
    rpm: int | None
    tpm: int | None
    created_at: float
    revoked_at: float | None = None
    #: its requests use kanjia's response cache (unless a request says otherwise)
    response_cache: bool = False

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "tenant": self.tenant, "hint": self.hint,
                "models": list(self.models) if self.models is not None else None,
                "rpm": self.rpm, "tpm": self.tpm, "created_at": self.created_at,
                "revoked": self.revoked_at is not None, "revoked_at": self.revoked_at,
                "response_cache": self.response_cache}


@dataclass(frozen=True, slots=True)
class Budget:
    id: str
    scope: Scope
    subject: str
    period: Period
    amount: Decimal
    currency: str
    deleted: bool = False
    limit_nano: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "limit_nano", to_nano(self.amount))

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "scope": self.scope, "subject": self.subject,
                "period": self.period, "amount": str(self.amount), "currency": self.currency}


def _key(row: Sequence[Any]) -> KeyInfo:
    models = tuple(orjson.loads(row[5])) if row[5] is not None else None
    return KeyInfo(row[0], row[1], row[2], row[3], row[4], models, row[6], row[7], row[8],
                   row[9], bool(row[10]))


def _budget(row: Sequence[Any]) -> Budget:
    return Budget(row[0], row[1], row[2], row[3], from_nano(row[4]), row[5], row[6] is not None)


def _tenant(row: Sequence[Any]) -> Tenant:
    try:
        markup = check_markup(Decimal(row[1])) if row[1] is not None else None
        prices = PriceList.parse(orjson.loads(row[2])) if row[2] is not None else None
    except (ConfigError, ArithmeticError, ValueError) as exc:
        why = exc.message if isinstance(exc, ConfigError) else str(exc)
        return Tenant(row[0], error=f"tenant {row[0]!r} has an unusable markup or price "
                      f"list ({why}); set it again with kanjia keys tenant")
    return Tenant(row[0], markup, prices)


def _budget_step(scope: Scope, subject: str, spec: BudgetSpec, now: float) -> Step:
    return ("INSERT INTO budgets (id, scope, subject, period, amount_nano, currency, created_at,"
            " updated_at, deleted_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL) ON CONFLICT (id) DO "
            "UPDATE SET amount_nano = excluded.amount_nano, currency = excluded.currency, "
            "updated_at = excluded.updated_at, deleted_at = NULL",
            (f"{scope}:{subject}:{spec.period}", scope, subject, spec.period,
             to_nano(spec.amount), spec.currency, now, now))


def _tenant_step(name: str, now: float) -> Step:
    return ("INSERT INTO tenants (name, markup, price_list, created_at, updated_at) "
            "VALUES (?, NULL, NULL, ?, ?) ON CONFLICT (name) DO NOTHING", (name, now, now))


@dataclass(frozen=True, slots=True)
class Changes:
    keys: list[KeyInfo]
    tenants: list[Tenant]
    budgets: list[Budget]
    newest: float


class Registry:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- keys -----------------------------------------------------------------------------
    async def create_key(self, name: str, *, tenant: str | None = None,
                         models: Sequence[str] | None = None, rpm: int | None = None,
                         tpm: int | None = None, budgets: Sequence[BudgetSpec] = (),
                         response_cache: bool = False) -> tuple[str, KeyInfo]:
        """Create a key; returns the secret (shown once) and what is stored."""
        if not name.strip():
            raise BadRequest("a key needs a name")
        for limit in (rpm, tpm):
            if limit is not None and not 0 < limit <= _MAX_RATE:
                raise BadRequest(f"rpm and tpm must be from 1 to {_MAX_RATE}")
        secret = new_secret()
        now = time.time()
        info = KeyInfo("key_" + uuid.uuid4().hex[:16], name.strip(), tenant, hash_key(secret),
                       f"{secret[:7]}…{secret[-4:]}",
                       tuple(models) if models is not None else None, rpm, tpm, now,
                       response_cache=response_cache)
        steps: list[Step] = []
        if tenant:
            steps.append(_tenant_step(tenant, now))
        steps.append((f"INSERT INTO api_keys ({_KEY_COLS}, updated_at) "
                      "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?)",
                      (info.id, info.name, tenant, info.key_hash, info.hint,
                       orjson.dumps(list(models)).decode() if models is not None else None,
                       rpm, tpm, now, int(response_cache), now)))
        steps.extend(_budget_step("key", info.id, spec, now) for spec in budgets)
        await self.db.transaction(steps)
        return secret, info

    async def keys(self, include_revoked: bool = False) -> list[KeyInfo]:
        where = "" if include_revoked else " WHERE revoked_at IS NULL"
        rows = await self.db.fetch(f"SELECT {_KEY_COLS} FROM api_keys{where} ORDER BY created_at")
        return [_key(r) for r in rows]

    async def find_key(self, ident: str) -> KeyInfo:
        """A key by id, or by name when the name is unique among live keys."""
        rows = await self.db.fetch(f"SELECT {_KEY_COLS} FROM api_keys WHERE id = ?", (ident,))
        if not rows:
            rows = await self.db.fetch(f"SELECT {_KEY_COLS} FROM api_keys WHERE name = ? AND "
                                       "revoked_at IS NULL", (ident,))
        if not rows:
            raise NotFound(f"no key with id or name {ident!r}")
        if len(rows) > 1:
            ids = ", ".join(r[0] for r in rows)
            raise BadRequest(f"several live keys are named {ident!r} ({ids}): use an id")
        return _key(rows[0])

    async def revoke_key(self, ident: str) -> KeyInfo:
        info = await self.find_key(ident)
        now = time.time()
        await self.db.execute("UPDATE api_keys SET revoked_at = ?, updated_at = ? WHERE id = ? "
                              "AND revoked_at IS NULL", (now, now, info.id))
        return (await self.find_key(info.id))

    async def any_keys(self) -> bool:
        return bool(await self.db.fetch("SELECT id FROM api_keys LIMIT 1"))

    # -- tenants ------------------------------------------------------------------------------
    async def set_tenant(self, name: str, *, markup: Decimal | None = None,
                         price_list: PriceList | None = None, clear: bool = False) -> Tenant:
        """Create or update a tenant; ``None`` keeps a field unless ``clear``."""
        if not name.strip():
            raise BadRequest("a tenant needs a name")
        if markup is not None:
            try:
                check_markup(markup)
            except ConfigError as exc:
                raise BadRequest(exc.message) from None
        now = time.time()
        prices = orjson.dumps(price_list.to_json()).decode() if price_list else None
        keep = "" if clear else "COALESCE(excluded.{0}, tenants.{0})"
        mk = keep.format("markup") if keep else "excluded.markup"
        pl = keep.format("price_list") if keep else "excluded.price_list"
        await self.db.execute(
            "INSERT INTO tenants (name, markup, price_list, created_at, updated_at) VALUES "
            f"(?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET markup = {mk}, "
            f"price_list = {pl}, updated_at = excluded.updated_at",
            (name, str(markup) if markup is not None else None, prices, now, now))
        return await self.tenant(name)

    async def tenant(self, name: str) -> Tenant:
        rows = await self.db.fetch("SELECT name, markup, price_list FROM tenants WHERE name = ?",
                                   (name,))
        if not rows:
            raise NotFound(f"no tenant {name!r}")
        return _tenant(rows[0])

    async def tenants(self) -> list[Tenant]:
        rows = await self.db.fetch("SELECT name, markup, price_list FROM tenants ORDER BY name")
        return [_tenant(r) for r in rows]

    # -- budgets --------------------------------------------------------------------------------
    async def set_budget(self, scope: Scope, subject: str, spec: BudgetSpec) -> Budget:
        now = time.time()
        if scope == "key":
            subject = (await self.find_key(subject)).id
            steps = [_budget_step(scope, subject, spec, now)]
        elif scope == "tenant":
            steps = [_tenant_step(subject, now), _budget_step(scope, subject, spec, now)]
        else:
            raise BadRequest("budget scope must be 'key' or 'tenant'")
        await self.db.transaction(steps)
        return Budget(f"{scope}:{subject}:{spec.period}", scope, subject, spec.period,
                      spec.amount, spec.currency)

    async def delete_budget(self, budget_id: str) -> bool:
        now = time.time()
        n = await self.db.execute("UPDATE budgets SET deleted_at = ?, updated_at = ? "
                                  "WHERE id = ? AND deleted_at IS NULL", (now, now, budget_id))
        return n > 0

    async def budgets(self) -> list[Budget]:
        rows = await self.db.fetch(f"SELECT {_BUDGET_COLS} FROM budgets WHERE deleted_at IS NULL "
                                   "ORDER BY id")
        return [_budget(r) for r in rows]

    # -- what changed (for the in-memory directory) ----------------------------------------------
    async def changes(self, since: float) -> Changes:
        """Everything updated at or after ``since`` (deleted budgets included)."""
        keys = await self.db.fetch(f"SELECT {_KEY_COLS}, updated_at FROM api_keys "
                                   "WHERE updated_at >= ?", (since,))
        tenants = await self.db.fetch("SELECT name, markup, price_list, updated_at FROM tenants "
                                      "WHERE updated_at >= ?", (since,))
        budgets = await self.db.fetch(f"SELECT {_BUDGET_COLS}, updated_at FROM budgets "
                                      "WHERE updated_at >= ?", (since,))
        newest = max([since, *(r[-1] for r in keys), *(r[-1] for r in tenants),
                      *(r[-1] for r in budgets)])
        return Changes([_key(r) for r in keys], [_tenant(r) for r in tenants],
                       [_budget(r) for r in budgets], newest)
