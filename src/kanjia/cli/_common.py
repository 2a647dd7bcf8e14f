"""What the subcommands share: one-line errors (exit 2) and date options."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from functools import wraps
from typing import ParamSpec, TypeVar

import click

from kanjia.errors import KanjiaError

__all__ = ["CURRENCIES", "BadInput", "Command", "Group", "friendly", "iso_date"]

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
