"""The ``kanjia`` command. Subcommands live in their own modules and load lazily,
so ``kanjia --help`` and each command start fast."""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from kanjia.errors import KanjiaError

#: command name -> "module:attribute" of a click.Command
COMMANDS: dict[str, str] = {
    "serve": "kanjia.cli.serve:serve",
    "sandbox": "kanjia.cli.sandbox:sandbox",
    "demo": "kanjia.cli.demo:demo",
    "prices": "kanjia.cli.prices:prices",
    "quote": "kanjia.cli.prices:quote",
    "catalog": "kanjia.cli.catalog:catalog",
    "route": "kanjia.cli.route:route",
    "status": "kanjia.cli.route:status",
    "batch": "kanjia.cli.batch:batch",
    "router": "kanjia.cli.router:router",
    "keys": "kanjia.cli.keys:keys",
    "usage": "kanjia.cli.usage:usage",
    "report": "kanjia.cli.report:report",
    "breakeven": "kanjia.cli.report:breakeven",
    "reconcile": "kanjia.cli.reconcile:reconcile",
    "local": "kanjia.cli.local:local",
    "dashboard": "kanjia.cli.dashboard:dashboard",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(n for n in COMMANDS if self._load(n) is not None)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return self._load(cmd_name)

    @staticmethod
    def _load(name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                return None
            raise
        command: Any = getattr(module, attr, None)
        return command if isinstance(command, click.Command) else None


@click.group(cls=LazyGroup)
@click.version_option(package_name="kanjia")
def cli() -> None:
    """kanjia (砍价): one OpenAI-compatible API over every LLM vendor, routed by price."""


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except KanjiaError as exc:
        click.echo(f"error: {exc.message}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
