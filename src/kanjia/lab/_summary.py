"""A short human-readable view of an evaluation report."""

from __future__ import annotations

from typing import Any


def format_summary(report: dict[str, Any]) -> str:
    lines = [f"test rows: {report['rows']['test']}  (train {report['rows']['train']})"]
    lines.append(
        f"AIQ {report['aiq']:.4f}  "
        + "  ".join(f"{k} {v:.4f}" for k, v in report["aiq_by_method"].items())
    )
    for name, b in report["baselines"].items():
        lines.append(
            f"  {name:40s} accuracy {b['accuracy']:.3f}  mean cost {b['mean_cost']:.6f}  "
            f"AIQ {b['aiq']:.4f}"
        )
    for label, point in report["budgets"].items():
        if point:
            lines.append(
                f"best within {label}: accuracy {point['accuracy']:.3f} "
                f"at {point['mean_cost']:.6f} (weight {point['threshold']:.3f})"
            )
    vs = report["vs_task_label"]
    lines.append(
        f"vs task_label: min margin {vs['min_margin']:+.4f} (on or above: {vs['on_or_above']})"
    )
    if "apgr" in report:
        lines.append(
            f"APGR {report['apgr']:.3f}  CPT50 {report['cpt50']:.1%}  CPT80 {report['cpt80']:.1%}"
        )
    for task, entry in report.get("by_task", {}).items():
        if "apgr" in entry:
            lines.append(
                f"  {task}: APGR {entry['apgr']:.3f}  CPT50 {entry['cpt50']:.1%}  "
                f"CPT80 {entry['cpt80']:.1%}"
            )
    checks = report.get("code_check_cascades", 0)
    if checks and report.get("code_checks"):
        lines.append(f"code checks: ran for {checks} code-check cascade(s)")
    elif checks:
        lines.append(
            f"code checks: not run (no --code-checks); {checks} code-check cascade(s) called "
            "their most accurate model alone"
        )
    ms = report["decision_ms"]
    lines.append(f"decision: p50 {ms['p50']:.3f} ms  p99 {ms['p99']:.3f} ms")
    return "\n".join(lines)
