"""A release recipe as a unit of work: the recipe search on an executor (``release --executor ray``).

Each recipe's whole chain (``Conductor.run_chain``) runs as one unit, in its own child process, and
the units run in parallel on a Ray cluster. The chains share the run folder: a stage they all need
(the fp32 baseline export, the baseline evaluation) runs once under the workspace's per-stage lock,
and the other chains find it fresh, exactly as in the sequential local run. The driver puts the
chains back in the requested order, so the search table, the Pareto front and the decision are the
local run's. Without ``--pareto`` every recipe still runs, and the chains after the first ACCEPT
(in the requested order) are left out of the report, as the local run never reaches them.

The run folder must be on storage every node sees at the same path, with a working ``flock``.
"""
from __future__ import annotations

from collections.abc import Callable

from modelgate.contract import make_verdict

# a chain's stages each have their own timeout; the unit's is only a backstop over all of them
CHAIN_STAGES = 6  # baseline export, quantize, gate-ptq, canary, closeout, slack
CHAIN_MARGIN_S = 300.0


def chain_unit(workspace: str, run_id: str, model: str, evals: dict, recipe: dict, device: str, threshold: float,
               relative: bool, timeout: float, calibration_data: str | None = None) -> dict:
    """Worker side: rebuild the conductor over the shared run folder and run one recipe's chain.

    ``evals`` is the driver's ``EvalOptions`` as a dict (tasks, limit, precision, --eval-data, lm-eval
    options): the worker builds the same eval config (its hash is checked by the comparison).
    Returns the chain and this process's stage bookkeeping (ran, skipped, seconds) for the driver."""
    from modelgate.release.conductor import Conductor, EvalOptions, resolve_source
    from modelgate.release.workspace import Workspace

    ws = Workspace(workspace, run_id)
    cond = Conductor(ws, resolve_source(model), EvalOptions(**evals), device=device, threshold=threshold,
                     relative=relative, timeout=timeout, recipes=[recipe], calibration_data=calibration_data)
    chain = cond.run_chain(recipe)
    return {"chain": chain, "ran": ws.ran, "skipped": ws.skipped, "seconds": ws.seconds}


def unit_timeout(timeout: float, tasks: list[str]) -> float:
    """The backstop timeout of one chain: every stage's timeout (two evaluations per task) plus a margin."""
    return timeout * (CHAIN_STAGES + 2 * len(tasks)) + CHAIN_MARGIN_S


def _failed_chain(recipe: str, failure_class: str, detail: str):
    from modelgate.gates.release_decision import decide_release
    from modelgate.release.conductor import ChainResult

    stage = make_verdict("recipe-unit", passed=False, failure_class=failure_class, detail=detail)
    return ChainResult(recipe, decide_release([stage]), [stage])


def run_recipes(executor, ws, source, evals, recipes: list[dict], *, limit: int | None, device: str,
                threshold: float, relative: bool, timeout: float, pareto: bool,
                progress: Callable[[str], None], calibration_data: str | None = None) -> tuple[list, dict]:
    """Every recipe's chain as a unit on ``executor``; returns (chains in the requested order, placements).

    ``evals``: the conductor's ``EvalOptions`` (or a list of task names, with ``limit``).

    ``ws``'s bookkeeping (ran, skipped, seconds) gets each reported chain's, in recipe order. A unit
    that returned no chain (its worker or node lost on every attempt, a crash of the unit itself,
    its backstop timeout) becomes a chain whose one stage says so: INDETERMINATE for TIMEOUT and
    INFRA_TRANSIENT, as a stage that failed that way locally.
    """
    import dataclasses

    from modelgate.executor import Unit
    from modelgate.release.conductor import EvalOptions

    if not isinstance(evals, EvalOptions):
        evals = EvalOptions(tasks=list(evals), limit=limit)
    tasks = evals.tasks
    units = [Unit(key=f"recipe:{r['name']}", target="modelgate.release.recipe_units:chain_unit", kind="recipe",
                  kwargs={"workspace": str(ws.root), "run_id": ws.run_id, "model": str(source.path),
                          "evals": dataclasses.asdict(evals), "recipe": r, "device": device,
                          "threshold": threshold, "relative": relative, "timeout": timeout,
                          "calibration_data": calibration_data},
                  timeout_s=unit_timeout(timeout, tasks), device=device, num_cpus=executor.unit_threads,
                  error_class="UNKNOWN", nested=True)
             for r in recipes]
    records: dict = {}

    def handle(rec):
        records[rec.unit.key] = rec
        outcome = rec.result.value["chain"].verdict["decision"] if rec.ran and rec.result.ok else \
            (rec.result.failure_class if rec.ran else f"not run: {rec.not_run}")
        where = (rec.placement or {}).get("node_label") or "?"
        progress(f"{rec.unit.key}: {outcome} (on {where})")
        return []

    progress(f"{len(units)} recipe chains on {executor.name}")
    executor.run(units, handle=handle)
    chains, placements = [], {}
    for unit, recipe in zip(units, recipes):
        rec = records[unit.key]
        if rec.ran and rec.result.ok:
            value = rec.result.value
            chain = value["chain"]
            ws.ran.extend(value["ran"])
            ws.skipped.extend(value["skipped"])
            ws.seconds.update(value["seconds"])
        elif rec.ran:
            chain = _failed_chain(recipe["name"], rec.result.failure_class or "UNKNOWN",
                                  f"the recipe's chain returned no result: {rec.result.detail}")
        else:
            chain = _failed_chain(recipe["name"], "INFRA_TRANSIENT", f"the recipe's chain never started: {rec.not_run}")
        chains.append(chain)
        if rec.placement:
            placements[recipe["name"]] = {k: rec.placement.get(k) for k in
                                          ("executor", "node", "node_label", "started_at", "ended_at", "attempts",
                                           "attempt_errors")}
        if not pareto and chain.verdict.get("decision") == "ACCEPT":
            break
    return chains, placements

