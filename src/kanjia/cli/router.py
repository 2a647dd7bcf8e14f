"""``kanjia router``: train the quality router from outcome data and evaluate it."""

from __future__ import annotations

import sys
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import click
import orjson

from kanjia.cli._common import BadInput

if TYPE_CHECKING:
    from kanjia.lab import CodeChecker

#: the libraries of the ``lab`` extra: one of them missing means the extra is not installed
LAB_LIBRARIES = frozenset({"scipy", "pandas", "pyarrow", "matplotlib"})


def _lab() -> ModuleType:
    """The router lab, or a one-line error saying how to install it."""
    try:
        import kanjia.lab
    except ModuleNotFoundError as exc:
        library = (exc.name or "").split(".")[0]
        if library not in LAB_LIBRARIES:
            raise
        raise BadInput(
            f"kanjia router needs the router lab's libraries ({library} is missing): "
            "pip install 'kanjia[lab]'"
        ) from None
    return kanjia.lab


@click.group()
def router() -> None:
    """Learn which model is good enough for a prompt.

    The router learns from recorded outcomes."""


@router.command()
@click.option(
    "--data", "data_dir", required=True, help="Data directory (or a name under $KANJIA_DATA_DIR)."
)
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--folds", default=5, show_default=True, help="Folds for out-of-fold estimates.")
@click.option("--no-cascades", is_flag=True, help="Train the prompt router only.")
@click.option(
    "--code-checks",
    is_flag=True,
    help="Also search code-check cascades on code tasks: runs the data's code answers "
    "(sandboxed child processes).",
)
def train(data_dir: str, out: Path, folds: int, no_cascades: bool, code_checks: bool) -> None:
    """Train a router and write its file.

    Fit on the train split only and write the router file (.npz, no pickles)."""
    lab = _lab()
    if code_checks:
        _isolated_checker()
    data = lab.load_dataset(data_dir)
    options = lab.TrainOptions(folds=folds, cascades=not no_cascades, code_checks=code_checks)
    model = lab.train_router(data, options, log=lambda msg: click.echo(msg, err=True))
    model.save(out)
    click.echo(
        f"wrote {out} ({len(model.models)} models, tasks: {', '.join(model.plans)})", err=True
    )


@router.command(name="eval")
@click.option("--data", "data_dir", required=True)
@click.option(
    "--router",
    "router_file",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--plot", "plot", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.option(
    "--code-checks",
    is_flag=True,
    help="Run the data's code answers for code-check cascades (else each calls only its "
    "most accurate model, as the gateway does).",
)
def evaluate_command(
    data_dir: str, router_file: Path, as_json: bool, plot: Path | None, code_checks: bool
) -> None:
    """Evaluate a router on the test split.

    Report on the test split only: curve, baselines, AIQ, APGR/CPT, decision time."""
    from kanjia.routing.quality import QualityRouter

    lab = _lab()
    data = lab.load_dataset(data_dir)
    model = QualityRouter.load(router_file)
    if code_checks:
        model = model.with_checker(_isolated_checker())
    report = lab.evaluate(model, data)
    report["data"] = str(data_dir)
    if plot is not None:
        lab.plot_report(report, plot, title=f"{Path(data_dir).name}: test split")
    if as_json:
        sys.stdout.write(orjson.dumps(report, option=orjson.OPT_SERIALIZE_NUMPY).decode() + "\n")
        return
    click.echo(lab.format_summary(report))


def _isolated_checker() -> CodeChecker:
    """A code checker, or a one-line error when this machine cannot isolate one."""
    lab = _lab()
    checker: CodeChecker = lab.CodeChecker()
    try:
        checker.ensure_available()
    except lab.CodeCheckUnavailable as exc:
        raise BadInput(f"--code-checks: {exc}") from None
    return checker
