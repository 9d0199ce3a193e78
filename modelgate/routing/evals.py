"""The routing-eval runner behind ``scripts/run_routing_evals.py`` and ``modelgate routing-evals``
(``modelgate.cli.routing`` declares the command and its arguments; ``run`` does the work).

Routes every case of every split through the gate router (MiniLM on OpenVINO, classifier router)
or through a real agent CLI, and with ``--baselines`` also through the comparison routers
(exemplar and description-only on MiniLM, description-only on TF-IDF); prints per-skill precision/recall/F1,
the confusion matrix, every misrouted case, train vs held-out accuracy and the runtime; writes a
schema-checked JSON report; exits non-zero below the thresholds of ``evals/routing-config.json``.
"""
from __future__ import annotations

import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

from modelgate import contract
from modelgate.gates.routing import gate_checks
from modelgate.routing import agent, cases, exemplar, pipeline, router

EXIT_AGENT_SKIPPED = 3
DEFAULT_CONFIG = Path("evals") / "routing-config.json"
DEFAULT_OUTPUT = Path("build") / "routing-report.json"
REPO_ROOT = Path(__file__).resolve().parents[2]

GATE_ROUTER = "embedding"
BASELINE_BACKENDS = ("embedding-exemplar", "embedding-description", "lexical")
SIMILARITY_BACKENDS = (GATE_ROUTER, *BASELINE_BACKENDS)
CLASSIFIER_KEYS = ("C", "tfidf_weight", "char_weight", "rule", "threshold", "margin")

# --------------------------------------------------------------------------- config

def load_config(path: Path) -> dict:
    """Read and schema-check the routing config; GateInputError when unusable."""
    cfg = contract.read_json(path, what="routing config")
    errors = contract.schema_errors("routing-config", cfg)
    if errors:
        raise contract.GateInputError("USER_CONFIG_ERROR", f"{path}: " + "; ".join(errors[:5]))
    for name, params in cfg["router"].items():
        for key in ("threshold", "margin", "temperature", "C", "tfidf_weight", "char_weight"):
            if params.get(key) is not None and not math.isfinite(float(params[key])):
                raise contract.GateInputError("USER_CONFIG_ERROR", f"{path}: router.{name}.{key} is not finite")
    return cfg


# --------------------------------------------------------------------------- backends

def _description_backend(protos, all_cases, sims, params: dict, info: dict, timings: dict) -> dict:
    scored = pipeline.score_cases(all_cases, protos, sims)
    results = pipeline.routed(scored, params["threshold"], params["margin"])
    return {"status": "ran", "router": {"mode": "description", "threshold": params["threshold"],
                                        "margin": params["margin"]},
            "results": results, "info": info, "timings": timings}


def _lexical_backend(protos, all_cases, params: dict) -> dict:
    sims, info = pipeline.lexical_similarities(protos, [c.query for c in all_cases])
    return _description_backend(protos, all_cases, sims, params, {}, info["timings"])


def _embedding_backends(protos, exemplars, train, all_cases, router_cfg: dict, baselines: bool = False) -> dict:
    """The classifier router (``embedding``, the gate) and, with ``baselines``, the exemplar and the
    description-only routers beside it, from one cached encode."""
    t0 = time.monotonic()
    desc_sims, ex_sims, info, vecs = pipeline.embedding_matrices(protos, exemplars, [c.query for c in all_cases],
                                                                 similarities=baselines)
    timings = info.pop("timings")
    t1 = time.monotonic()
    params = router_cfg["embedding"]
    results, cl_info = pipeline.classifier_routed(all_cases, train, exemplars, vecs["exemplars"], vecs["queries"],
                                                  params)
    cl_timings = dict(timings, route_s=time.monotonic() - t1, total_s=time.monotonic() - t0)
    out = {"embedding": {"status": "ran", "router": {"mode": "classifier", **{k: params[k] for k in CLASSIFIER_KEYS
                                                                              if k in params}},
                         "results": results, "info": dict(info, **cl_info), "timings": cl_timings}}
    if not baselines:
        return out
    t1 = time.monotonic()
    params = router_cfg["embedding-exemplar"]
    results = pipeline.exemplar_routed(all_cases, exemplars, ex_sims[bool(params["center"])], params)
    ex_timings = dict(timings, route_s=time.monotonic() - t1)
    n_case = sum(e.origin == exemplar.CASE for e in exemplars)
    ex_info = dict(info, exemplars={"description_clauses": len(exemplars) - n_case, "train_cases": n_case,
                                    "by_label": {lb: sum(e.label == lb for e in exemplars)
                                                 for lb in sorted({e.label for e in exemplars})}},
                   train_accuracy="leave-one-out")
    out["embedding-exemplar"] = {"status": "ran", "router": {"mode": "exemplar", **{k: params[k] for k in
                                                             ("center", "k", "temperature", "threshold", "margin")}},
                                 "results": results, "info": ex_info, "timings": ex_timings}
    out["embedding-description"] = _description_backend(protos, all_cases, desc_sims,
                                                        router_cfg["embedding-description"], info, timings)
    return out


def _embedding_timed(protos, exemplars, train, all_cases, router_cfg: dict, cold: bool,
                     baselines: bool = False) -> tuple[dict, dict]:
    """Run the embedding backends; with ``cold``, first into a fresh cache (export + embeddings), then warm."""
    timings = {}
    if not cold:
        t0 = time.monotonic()
        out = _embedding_backends(protos, exemplars, train, all_cases, router_cfg, baselines)
        timings["embedding_total_s"] = time.monotonic() - t0
        return out, timings
    saved = os.environ.get("MODELGATE_FIXTURE_CACHE")
    with tempfile.TemporaryDirectory(prefix="routing-cold-") as tmp:
        os.environ["MODELGATE_FIXTURE_CACHE"] = tmp
        try:
            t0 = time.monotonic()
            _embedding_backends(protos, exemplars, train, all_cases, router_cfg, baselines)
            timings["embedding_cold_total_s"] = time.monotonic() - t0
            t0 = time.monotonic()
            out = _embedding_backends(protos, exemplars, train, all_cases, router_cfg, baselines)
            timings["embedding_warm_total_s"] = time.monotonic() - t0
        finally:
            if saved is None:
                os.environ.pop("MODELGATE_FIXTURE_CACHE", None)
            else:
                os.environ["MODELGATE_FIXTURE_CACHE"] = saved
    timings["embedding_total_s"] = timings["embedding_warm_total_s"]
    return out, timings


def _agent_backend(args, all_cases, skills, root: Path, out_dir: Path) -> dict:
    prefix, reason = agent.agent_argv(args.agent_cmd)
    if prefix is None:
        return {"status": "skipped", "reason": reason}
    t0 = time.monotonic()
    runs = agent.route_with_agent(prefix, [c.query for c in all_cases], skills, timeout=args.agent_timeout,
                                  cwd=root, log_dir=out_dir / "agent-logs")
    results = []
    for c, r in zip(all_cases, runs):
        d = dict(vars(c) if hasattr(c, "__dict__") else c._asdict(), predicted=r["predicted"], evidence=r["evidence"])
        d["agent_error"] = r["error"]
        results.append(d)
    errors = [r for r in results if r["agent_error"]]
    return {"status": "ran" if not errors else "failed", "results": results,
            "reason": f"{len(errors)} agent runs failed" if errors else "ok",
            "info": {"argv_prefix": prefix, "errors": len(errors)},
            "timings": {"total_s": time.monotonic() - t0}}


def _case_rows(results) -> list[dict]:
    rows = []
    for r in results:
        row = {"name": r["name"], "split": r["split"], "source": r["source"], "expected": r["expected"],
               "predicted": r["predicted"]}
        if "scores" in r:
            row["scores"] = {k: round(v, 4) for k, v in r["scores"].items()}
            row["top_score"] = round(r["top_score"], 4)
        if r.get("neighbours"):
            row["neighbours"] = r["neighbours"]
        if r.get("evidence"):
            row["evidence"] = r["evidence"]
        rows.append(row)
    return rows


# --------------------------------------------------------------------------- decide

# --------------------------------------------------------------------------- print

def _fmt(x, nd=3):
    return "-" if x is None else f"{x:.{nd}f}"


def _router_line(name: str, r: dict) -> str:
    if r.get("mode") == "classifier":
        chars = f" + {r['char_weight']:g} x char n-grams" if r.get("char_weight") else ""
        evidence = "1 - p(none)" if r.get("rule") == "skill-mass" else "top-label probability"
        return (f"  {name}: classifier (logistic regression, C {r['C']:g}, MiniLM vector + "
                f"{r['tfidf_weight']:g} x word n-grams{chars}), {evidence} threshold {r['threshold']:.4f}, "
                f"margin {r['margin']:.2f} (calibrated on train, out-of-round)\n")
    if r.get("mode") == "exemplar":
        t = "linear" if r.get("temperature") is None else f"{r['temperature']:g}"
        return (f"  {name}: exemplar vote, {'centred' if r['center'] else 'raw'} vectors, k {r['k']}, weights {t}, "
                f"evidence threshold {r['threshold']:.4f}, share margin {r['margin']:.2f} "
                f"(calibrated on train, leave-one-out)\n")
    return (f"  {name}: description-only, threshold {r['threshold']:.4f}, margin {r['margin']:.2f} "
            f"(calibrated on train)\n")


def render(report: dict, out=sys.stdout) -> None:
    """Human-readable summary of a report: the gating backend in full, the others beside it."""
    w = out.write
    be = report["backends"]
    gate = report["gate_backend"]
    skills = report["skills"]
    g = be.get(gate, {})
    others = [n for n in SIMILARITY_BACKENDS if n != gate and be.get(n, {}).get("status") == "ran"]
    w(f"routing evals: {len(skills)} skills; gating backend: {gate}\n")
    if g.get("status") != "ran":
        w(f"  {gate}: {g.get('status')} - {g.get('reason', '')}\n")
    splits = [s for s in ("train", "heldout", "extra", "all") if s in g.get("splits", {})]
    if splits:
        w("routers:\n")
        for n in [gate] + others:
            if be[n].get("router"):
                w(_router_line(n, be[n]["router"]))
        cols = [gate] + others
        w(f"\n{'split':8} {'cases':>5} | "
          + " | ".join(f"{n[:21] + ' acc':>25} {'false-trig':>10}" for n in cols) + "\n")
        for s in splits:
            line = f"{s:8} {g['splits'][s]['cases']:5d} | " + " | ".join(
                f"{_fmt(be[n]['splits'][s]['accuracy']):>25} {be[n]['splits'][s]['false_triggers']:10d}" for n in cols)
            w(line + "\n")
        if "train" in splits:
            w("(train accuracy is out-of-round for the classifier router: each writing round is routed by a model "
              "fitted without it; leave-one-out for the exemplar router)\n")
        for s in [x for x in splits if x != "all"]:
            m = g["splits"][s]
            w(f"\nper-skill [{s}] {gate:22} {'P':>6} {'R':>6} {'F1':>6}")
            for n in others:
                w(f"   {n[:21]:>21} {'P':>6} {'R':>6} {'F1':>6}")
            w("\n")
            for sk in skills:
                ps = m["per_skill"][sk]
                w(f"  {sk:34} {_fmt(ps['precision']):>6} {_fmt(ps['recall']):>6} {_fmt(ps['f1']):>6}")
                for n in others:
                    lp = be[n]["splits"][s]["per_skill"][sk]
                    w(f"   {'':21} {_fmt(lp['precision']):>6} {_fmt(lp['recall']):>6} {_fmt(lp['f1']):>6}")
                w("\n")
            labels = m["confusion"]["labels"]
            short = [lb[:10] for lb in labels]
            w(f"confusion [{s}] rows=expected cols=predicted: " + " ".join(f"{x:>10}" for x in short) + "\n")
            for lb, row in zip(labels, m["confusion"]["matrix"]):
                w(f"  {lb:>44} " + " ".join(f"{v:10d}" for v in row) + "\n")
        mis = g["splits"]["all"]["misrouted"]
        w(f"\nmisrouted ({gate}): {len(mis)}\n")
        for x in mis:
            w(f"  [{x['split']}] {x['name']}: expected {x['expected']} -> got {x['predicted']} | {x['query']}\n")
    t = report["timings"]
    if t:
        w("\ntimings (s): " + ", ".join(f"{k} {v:.1f}" for k, v in t.items()) + "\n")
    info = g.get("info", {})
    if "export_cold" in info:
        w(f"MiniLM export: {'built in this run (cold)' if info['export_cold'] else 'cache hit (warm)'}; "
          f"embeddings: cache {info.get('embedding_cache', '-')}\n")
    for c in report["checks"]:
        w(f"  check {c['name']}: {'ok' if c['pass'] else 'FAIL'} (measured {c['measured']}, "
          f"threshold {c['threshold']})\n")
    w(f"{'PASS' if report['pass'] else 'FAIL'}: {report['detail']}\n")


# --------------------------------------------------------------------------- main

def _finish(report: dict, output: Path, quiet: bool) -> int:
    errors = contract.schema_errors("routing-report", report)
    if errors:  # a report that breaks its schema is a bug: say so, never write it
        raise RuntimeError("routing report violates its schema: " + "; ".join(errors[:5]))
    contract.atomic_write_json(output, report)
    if quiet:
        print(f"{'PASS' if report['pass'] else 'FAIL'}: {report['detail']}")
    else:
        render(report)
        print(f"report: {output}")
    return int(report["exit_code"])


def _router_entry(cal: dict, keys: tuple[str, ...], method: str) -> dict:
    return {**{k: cal[k] for k in keys}, "calibrated_on": "train", "method": method,
            "calibration": {k: v for k, v in cal.items() if k not in keys}}


def calibrate_config(root: Path, config_path: Path, protos, exemplars, train_cases, baselines: bool = False) -> dict:
    """Calibrate the routers on the train split only and write the config.

    The classifier router (``embedding``, the gate) out-of-round over the train cases' writing
    rounds; with ``baselines`` also the exemplar router (``embedding-exemplar``) by leave-one-out
    and the description-only routers (``embedding-description``, ``lexical``) directly on them.
    Without ``baselines`` the comparison routers' entries are left as they are.
    """
    try:
        cfg = contract.read_json(config_path, what="routing config")
    except contract.GateInputError:
        cfg = {"gate_backend": "embedding", "min_accuracy": {"heldout": 0.95, "train": 0.9},
               "max_false_triggers": 0, "router": {}}
    queries = [c.query for c in train_cases]
    desc_sims, ex_sims, _, vecs = pipeline.embedding_matrices(protos, exemplars, queries, similarities=baselines)
    cal = pipeline.calibrate_classifier(train_cases, exemplars, vecs["exemplars"])
    cfg["router"]["embedding"] = {"mode": "classifier", **_router_entry(
        cal, CLASSIFIER_KEYS, "out-of-round")}
    if baselines:
        _calibrate_baselines(cfg, protos, exemplars, train_cases, desc_sims, ex_sims)
    errors = contract.schema_errors("routing-config", cfg)
    if errors:
        raise contract.GateInputError("USER_CONFIG_ERROR",
                                      "calibrated config violates its schema: " + "; ".join(errors))
    contract.atomic_write_json(config_path, cfg)
    return cfg


def _calibrate_baselines(cfg: dict, protos, exemplars, train_cases, desc_sims, ex_sims) -> None:
    """The comparison routers' parameters, on the train split only, into ``cfg["router"]``."""
    lex_sims, _ = pipeline.lexical_similarities(protos, [c.query for c in train_cases])
    cal = pipeline.calibrate_exemplar(train_cases, exemplars, ex_sims)
    cfg["router"]["embedding-exemplar"] = {"mode": "exemplar", **_router_entry(
        cal, ("center", "k", "temperature", "threshold", "margin"), "leave-one-out")}
    for name, sims in (("embedding-description", desc_sims), ("lexical", lex_sims)):
        cal = router.calibrate(pipeline.score_cases(train_cases, protos, sims))
        cfg["router"][name] = {"mode": "description", **_router_entry(cal, ("threshold", "margin"), "direct")}


def run(args) -> int:
    """Run the routing evals for parsed arguments (see ``modelgate.cli.routing``); return the exit code."""
    root = Path(args.root).resolve()
    config_path = Path(args.config) if args.config else root / DEFAULT_CONFIG
    output = Path(args.output)
    t_start = time.monotonic()
    try:
        all_cases = cases.load_splits(root, args.cases)
        descriptions = cases.descriptions(root)
        skills = list(descriptions)
        unknown = sorted({c.expected for c in all_cases} - set(skills) - {cases.NONE}
                         | {c.skill for c in all_cases} - set(skills))
        if unknown:
            raise contract.GateInputError("USER_CONFIG_ERROR",
                                          f"cases name skills that do not exist: {', '.join(unknown)}")
        protos = router.prototypes(descriptions)
        train = [c for c in all_cases if c.split == "train"]
        exemplars = exemplar.build(router.prototypes(descriptions, include_full=False), train)
        if args.calibrate:
            if not train:
                raise contract.GateInputError("USER_CONFIG_ERROR", "no train cases to calibrate on")
            try:
                cfg = calibrate_config(root, config_path, protos, exemplars, train, baselines=args.baselines)
            except RuntimeError as exc:
                raise contract.GateInputError("UNKNOWN", f"embedding backend could not run: {exc}") from exc
            except ValueError as exc:
                raise contract.GateInputError("USER_CONFIG_ERROR",
                                              f"routers could not be calibrated on the train cases: {exc}") from exc
            print(json.dumps(cfg["router"], indent=2))
            print(f"calibrated on {len(train)} train cases; written to {config_path}")
            return contract.EXIT_PASS
        config = load_config(config_path)
        gate = args.backend or config["gate_backend"]
        baselines = args.baselines or gate in BASELINE_BACKENDS
        backends: dict[str, dict] = {}
        timings: dict[str, float] = {}
        if gate == "agent":
            backends["agent"] = _agent_backend(args, all_cases, skills, root, output.parent)
        else:
            for name in SIMILARITY_BACKENDS if baselines else (GATE_ROUTER,):
                if name not in config["router"]:
                    raise contract.GateInputError("USER_CONFIG_ERROR",
                                                  f"{config_path}: no router parameters for {name}; run --calibrate")
            if not train:
                raise contract.GateInputError("USER_CONFIG_ERROR", "no train cases: the classifier and exemplar "
                                              "routers have nothing to learn from")
            try:
                emb, t = _embedding_timed(protos, exemplars, train, all_cases, config["router"], args.cold, baselines)
            except RuntimeError as exc:
                raise contract.GateInputError("UNKNOWN", f"embedding backend could not run: {exc}") from exc
            except ValueError as exc:  # e.g. the train cases and descriptions give the classifier a single label
                raise contract.GateInputError("USER_CONFIG_ERROR",
                                              f"routers could not be trained on the train cases: {exc}") from exc
            backends.update(emb)
            timings.update(t)
            if baselines:
                t0 = time.monotonic()
                backends["lexical"] = _lexical_backend(protos, all_cases, config["router"]["lexical"])
                timings["lexical_total_s"] = time.monotonic() - t0
    except contract.GateInputError:
        raise  # the spine prints it as a verdict (schema: the command's), exit 2

    for b in backends.values():
        if "results" in b:
            b["splits"] = pipeline.by_split(b["results"], skills)
            b["cases"] = _case_rows(b.pop("results"))
        b.setdefault("timings", {})
        b["timings"] = {k: round(float(v), 4) for k, v in b["timings"].items()}
    g = backends[gate]
    if g["status"] == "skipped":
        passed, code, checks, target_met = False, EXIT_AGENT_SKIPPED, [], False
        detail = f"agent backend skipped: {g['reason']}"
    else:
        target_checks = gate_checks(g["splits"], config)
        target_met = bool(target_checks) and all(c["pass"] for c in target_checks)
        if args.gate == "floor":
            if "regression_floor" not in config:
                raise contract.GateInputError("USER_CONFIG_ERROR",
                                              "--gate floor needs a regression_floor in the routing config")
            checks = gate_checks(g["splits"], config["regression_floor"])
        else:
            checks = target_checks
        if g["status"] == "failed":
            checks.append(contract.check("agent_runs_completed", False, g["info"].get("errors"), 0))
        passed = bool(checks) and all(c["pass"] for c in checks)
        code = contract.EXIT_PASS if passed else contract.EXIT_FAIL
        failed = [c["name"] for c in checks if not c["pass"]]
        ho = g["splits"].get("heldout")
        tr = g["splits"].get("train")
        detail = (f"{gate}: train accuracy {_fmt(tr and tr['accuracy'])}, held-out accuracy "
                  f"{_fmt(ho and ho['accuracy'])}, false triggers {g['splits']['all']['false_triggers']}"
                  + (f"; failed: {', '.join(failed)}" if failed else f"; all {args.gate} thresholds met")
                  + ("" if target_met else "; ACCEPTANCE TARGET NOT MET"))
    timings["total_s"] = time.monotonic() - t_start
    report = {"schema_version": contract.SCHEMA_VERSION, "tool": "routing-evals", "pass": passed, "exit_code": code,
              "detail": detail, "gate": args.gate, "target_met": target_met, "gate_backend": gate,
              "baselines": gate != "agent" and baselines, "skills": skills, "checks": checks, "backends": backends,
              "config": config, "timings": {k: round(v, 3) for k, v in timings.items()},
              "versions": contract.versions()}
    return _finish(report, output, args.quiet)

