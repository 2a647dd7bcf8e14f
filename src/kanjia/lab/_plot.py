"""``router eval --plot``: the router's cost-quality curve with the baselines."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def plot_report(report: dict[str, Any], path: Path, title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 6.5), dpi=110)

    def line(points: list[dict[str, float]], **style: Any) -> None:
        pts = sorted((p["mean_cost"], p["accuracy"]) for p in points)
        ax.plot([x for x, _ in pts], [y for _, y in pts], **style)

    line(
        report["curve"],
        color="tab:blue",
        marker="o",
        ms=3,
        lw=2,
        label="kanjia plan (router + cascades)",
    )
    curves = report.get("curves", {})
    if "router_weight" in curves:
        line(
            curves["router_weight"],
            color="tab:cyan",
            lw=1.2,
            ls="--",
            label="prompt router (weight)",
        )
    if "router_target" in curves:
        line(
            curves["router_target"],
            color="tab:purple",
            lw=1,
            ls=":",
            label="prompt router (quality target)",
        )
    baselines = report["baselines"]
    if "task_label" in baselines:
        line(
            baselines["task_label"]["curve"],
            color="tab:orange",
            marker="s",
            ms=3,
            lw=1.5,
            label="task_label (per-task router)",
        )
    if "random_mix" in baselines:
        line(baselines["random_mix"]["curve"], color="grey", lw=1, ls="-.", label="random_mix")
    special = {"task_label", "random_mix", "oracle"}
    for name, b in baselines.items():
        if name in special:
            continue
        ax.scatter([b["mean_cost"]], [b["accuracy"]], color="black", s=14, zorder=3)
        ax.annotate(
            name.split("/")[-1],
            (b["mean_cost"], b["accuracy"]),
            fontsize=7,
            xytext=(3, -9),
            textcoords="offset points",
        )
    if "oracle" in baselines:
        o = baselines["oracle"]
        ax.scatter(
            [o["mean_cost"]],
            [o["accuracy"]],
            marker="*",
            s=120,
            color="tab:green",
            label="oracle",
            zorder=4,
        )
    ax.set_xscale("log")
    ax.set_xlabel(f"mean cost per request ({report.get('currency', 'USD')}, log scale)")
    ax.set_ylabel("accuracy (test split)")
    floor = baselines.get("task_label", {}).get("aiq", float("nan"))
    summary = f"AIQ {report['aiq']:.3f} (task_label {floor:.3f})"
    if "apgr" in report:
        summary += (
            f"; APGR {report['apgr']:.3f}, CPT50 {report['cpt50']:.1%}, CPT80 {report['cpt80']:.1%}"
        )
    ax.set_title((title + "\n" if title else "") + summary, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
