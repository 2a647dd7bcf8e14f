"""What the subcommands share: one-line errors (exit 2) and date options."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import date
from functools import wraps
from pathlib import Path
from typing import ParamSpec, TypeVar

import click

from kanjia.errors import KanjiaError

__all__ = ["CURRENCIES", "BadInput", "Command", "Group", "existing_ledger", "friendly",
           "iso_date", "writable_ledger"]

CURRENCIES = ("CNY", "USD")
_P = ParamSpec("_P")
_R = TypeVar("_R")


class BadInput(click.ClickException):
    """Bad input on the command line: one line on stderr, exit status 2."""

    exit_code = 2


class Command(click.Command):
    """Usage errors as one line, like every other kanjia error."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:
            raise BadInput(exc.format_message()) from None


class Group(click.Group):
    """A group whose commands, and its own usage errors, fail in one line."""

    command_class = Command

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:
            raise BadInput(exc.format_message()) from None

    def resolve_command(self, ctx: click.Context,
                        args: list[str]) -> tuple[str | None, click.Command | None, list[str]]:
        try:
            return super().resolve_command(ctx, args)
        except click.UsageError as exc:
            raise BadInput(exc.format_message()) from None


def friendly(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    """Library errors (kanjia errors, bad values) as a one-line CLI error."""
    @wraps(fn)
    def run(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return fn(*args, **kwargs)
        except KanjiaError as exc:
            raise BadInput(exc.message) from None
        except ValueError as exc:
            raise BadInput(str(exc).splitlines()[0]) from None
    return run


def iso_date(ctx: click.Context, param: click.Parameter, value: str | None) -> date | None:
    """Click callback: a YYYY-MM-DD option value as a date."""
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)") from None


def _is_url(database: str) -> bool:
    return database.startswith(("postgresql://", "postgres://")) or database == ":memory:"


def existing_ledger(database: str) -> None:
    """A read-only command's --db: it must already exist (reading never creates one)."""
    if _is_url(database):
        return
    path = database.removeprefix("sqlite:///")
    if not Path(path).is_file():
        raise BadInput(f"no ledger at {path} (set --db or $KANJIA_DB to the gateway's "
                       "--db, or run `kanjia demo --db FILE`)")


def writable_ledger(database: str) -> None:
    """A writing command's --db: a SQLite file that exists and is writable, or one that
    can be created (PostgreSQL is checked on connect)."""
    if _is_url(database):
        return
    path = Path(database.removeprefix("sqlite:///"))
    if path.is_dir():
        raise BadInput(f"cannot write the ledger {path}: it is a directory")
    if path.exists():
        if not os.access(path, os.R_OK | os.W_OK):
            raise BadInput(f"cannot write the ledger {path}: permission denied")
        return
    folder = path.absolute().parent        # missing folders are created, as the store does
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir():
        raise BadInput(f"cannot create the ledger {path}: {folder} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise BadInput(f"cannot create the ledger {path}: folder {folder} is not writable")
