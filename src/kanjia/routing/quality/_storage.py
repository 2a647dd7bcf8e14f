"""The router file: one ``.npz`` of plain arrays plus a JSON header (no pickles), so it
loads offline with ``allow_pickle=False`` and can be inspected with NumPy alone."""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from kanjia.routing.quality._cascade import CascadePolicy
from kanjia.routing.quality._features import FeatureSpace
from kanjia.routing.quality._logistic import LinearHeads
from kanjia.routing.quality._plan import Choice, TaskLevels
from kanjia.routing.quality._vote import VoteModel

FORMAT = "kanjia-quality-router/2"


@dataclass(frozen=True)
class StoredRouter:
    """What a router file holds: the fields of ``QualityRouter`` (which reads and writes
    itself through this module, so this module does not know the router class)."""

    features: FeatureSpace
    heads: LinearHeads
    model_names: tuple[str, ...]
    expected_cost: Mapping[str, npt.NDArray[np.float64]]
    cost_scale: float
    plans: Mapping[str, TaskLevels] = field(default_factory=dict)
    cascades: Mapping[str, tuple[CascadePolicy, ...]] = field(default_factory=dict)
    info: Mapping[str, Any] = field(default_factory=dict)


def write_router(router: StoredRouter, path: Path) -> None:
    arrays: dict[str, npt.NDArray[Any]] = {
        "idf": router.features.idf.astype(np.float32),
        "head_weights": router.heads.weights.astype(np.float32),
        "head_bias": router.heads.bias,
    }
    cost_tasks = sorted(router.expected_cost)
    arrays["expected_cost"] = np.vstack([router.expected_cost[t] for t in cost_tasks])
    cascades: dict[str, list[dict[str, Any]]] = {}
    votes: dict[str, list[str]] = {}
    for t, (task, policies) in enumerate(sorted(router.cascades.items())):
        cascades[task] = []
        for p, policy in enumerate(policies):
            for s, step in enumerate(policy.steps):
                arrays[f"cascade_{t}_{p}_{s}_w"] = step.weights
                arrays[f"cascade_{t}_{p}_{s}_b"] = step.bias
            if policy.vote is not None and task not in votes:
                votes[task] = list(policy.vote.vocab)
                arrays[f"vote_{t}_prior"] = policy.vote.log_prior
                arrays[f"vote_{t}_conf"] = policy.vote.log_conf
                arrays[f"vote_{t}_rank"] = policy.vote.rank
            cascades[task].append(
                {
                    "chain": list(policy.chain),
                    "thresholds": list(policy.thresholds),
                    "keys": list(policy.keys),
                    "vote_index": list(policy.vote_index) if policy.vote is not None else None,
                    "check": policy.check,
                    "tie_break": list(policy.tie_break),
                }
            )
    header = {
        "format": FORMAT,
        "models": list(router.model_names),
        "n_buckets": router.features.n_buckets,
        "tail_chars": router.features.tail_chars,
        "tasks": list(router.features.tasks),
        "cost_tasks": cost_tasks,
        "cost_scale": router.cost_scale,
        "plans": {
            task: [
                [c.weight, c.route_weight, c.cascade, c.alt_route_weight, c.alt_cascade, c.fraction]
                for c in plan.choices
            ]
            for task, plan in sorted(router.plans.items())
        },
        "cascades": cascades,
        "votes": votes,
        "info": dict(router.info),
    }
    arrays["header"] = np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)  # type: ignore[arg-type]
    path.write_bytes(buffer.getvalue())


def read_router(path: Path) -> StoredRouter:
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    header = json.loads(arrays["header"].tobytes().decode("utf-8"))
    if header.get("format") != FORMAT:
        raise ValueError(f"{path}: not a {FORMAT} file")
    features = FeatureSpace(
        n_buckets=int(header["n_buckets"]),
        tail_chars=int(header["tail_chars"]),
        tasks=tuple(header["tasks"]),
        idf=arrays["idf"].astype(np.float64),
    )
    heads = LinearHeads(
        arrays["head_weights"].astype(np.float64), arrays["head_bias"].astype(np.float64)
    )
    expected = {
        task: arrays["expected_cost"][i].astype(np.float64)
        for i, task in enumerate(header["cost_tasks"])
    }
    cascades: dict[str, tuple[CascadePolicy, ...]] = {}
    for t, (task, items) in enumerate(sorted(header["cascades"].items())):
        vote = None
        if task in header.get("votes", {}):
            vote = VoteModel(
                tuple(header["votes"][task]),
                arrays[f"vote_{t}_prior"],
                arrays[f"vote_{t}_conf"],
                arrays[f"vote_{t}_rank"],
            )
        policies = []
        for p, item in enumerate(items):
            voted = item.get("vote_index") is not None
            check = bool(item.get("check", False))
            steps = tuple(
                LinearHeads(arrays[f"cascade_{t}_{p}_{s}_w"], arrays[f"cascade_{t}_{p}_{s}_b"])
                for s in range(0 if voted or check else len(item["chain"]))
            )
            policies.append(
                CascadePolicy(
                    tuple(item["chain"]),
                    tuple(float(x) for x in item["thresholds"]),
                    steps,
                    tuple(item["keys"]),
                    vote=vote if voted else None,
                    vote_index=tuple(int(i) for i in item["vote_index"]) if voted else (),
                    check=check,
                    tie_break=tuple(float(x) for x in item.get("tie_break", ())),
                )
            )
        cascades[task] = tuple(policies)
    plans = {
        task: TaskLevels(
            tuple(
                Choice(float(w), float(r), int(c), float(ar), int(ac), float(f))
                for w, r, c, ar, ac, f in rows
            )
        )
        for task, rows in header["plans"].items()
    }
    return StoredRouter(
        features=features,
        heads=heads,
        model_names=tuple(header["models"]),
        expected_cost=expected,
        cost_scale=float(header["cost_scale"]),
        plans=plans,
        cascades=cascades,
        info=header.get("info", {}),
    )
