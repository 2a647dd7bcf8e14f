"""Without the lab extra's libraries, ``kanjia router train/eval`` say in one line how to
install it; without matplotlib, a chart command names the ``charts`` extra."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


def _kanjia_without(library: str, *args: str) -> subprocess.CompletedProcess[str]:
    code = (f"import sys; sys.modules[{library!r}] = None\n"
            "from kanjia.cli.main import main\n"
            f"sys.argv = ['kanjia', *{list(args)!r}]\n"
            "main()")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)


@pytest.mark.parametrize("library", ["scipy", "pandas"])
def test_router_train_without_the_lab_says_how_to_install_it(
    library: str, tmp_path: Path
) -> None:
    out = tmp_path / "r.npz"
    done = _kanjia_without(library, "router", "train", "--data", str(tmp_path), "--out",
                           str(out))
    assert done.returncode == 2 and not out.exists()
    assert done.stderr.count("\n") == 1
    assert f"({library} is missing): pip install 'kanjia[lab]'" in done.stderr


def test_router_eval_without_the_lab_says_how_to_install_it(tmp_path: Path) -> None:
    router = tmp_path / "r.npz"
    router.write_bytes(b"not read")
    done = _kanjia_without("scipy", "router", "eval", "--data", str(tmp_path), "--router",
                           str(router))
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "pip install 'kanjia[lab]'" in done.stderr


def test_price_chart_without_matplotlib_names_the_charts_extra(tmp_path: Path) -> None:
    out = tmp_path / "chart.png"
    done = _kanjia_without("matplotlib", "prices", "chart", "--out", str(out))
    assert done.returncode == 2 and not out.exists()
    assert done.stderr.count("\n") == 1
    assert done.stderr.endswith(
        "drawing the price chart needs matplotlib: pip install 'kanjia[charts]'\n")
