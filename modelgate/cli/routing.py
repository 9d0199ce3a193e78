"""``modelgate routing-evals`` / ``scripts/run_routing_evals.py``: the skills' routing evals.

Routes every case of every split through the gate router (MiniLM on OpenVINO, classifier router)
or through a real agent CLI, and with --baselines also through the comparison routers (exemplar
and description-only on MiniLM, description-only on TF-IDF); prints per-skill precision/recall/F1,
the confusion matrix, every misrouted case, train vs held-out accuracy and the runtime; writes a
schema-checked JSON report; exits non-zero below the thresholds of ``evals/routing-config.json``.
The work is ``modelgate.routing.evals.run``.
"""
from __future__ import annotations

import argparse

from modelgate.cli.spine import Command
from modelgate.routing import evals

EPILOG = """\
splits: train = skills/<name>/evals.json (used to write the descriptions, as the routers'
training examples, and to calibrate the routers; train accuracy of the classifier router is
out-of-round: each writing round r1-, r2-, ... is routed by a model fitted without it; of the
exemplar router leave-one-out), heldout = evals/heldout/*.json (never used for any of these),
extra = --cases FILE.

backends: embedding = MiniLM on OpenVINO with the classifier router (logistic regression over
the sentence vector and word n-grams, trained on description clauses and train cases; the gate,
the only similarity router a default run computes), agent = a real agent CLI. Comparison routers,
run and reported only with --baselines: embedding-exemplar = MiniLM with a kNN vote over the same
examples, embedding-description = MiniLM with the description-only router, lexical = TF-IDF with
the description-only router.

exit codes:
  0  every threshold in the config is met by the gating backend
  1  a threshold is missed (accuracy below the minimum, or a false trigger)
  2  the input could not be judged (bad evals file, bad config, a skill without a description,
     the embedding model could not be exported or run)
  3  the agent backend was skipped: no agent CLI configured (--agent-cmd or MODELGATE_AGENT_CMD)
     or its executable is not on PATH; nothing was simulated
"""


def configure(p: argparse.ArgumentParser) -> None:
    """The routing-evals arguments."""
    p.add_argument("--backend", choices=[*evals.SIMILARITY_BACKENDS, "agent"], default=None,
                   help="backend that gates the run (default: the config's gate_backend, embedding); "
                        "a comparison router named here implies --baselines")
    p.add_argument("--baselines", action="store_true",
                   help="also run the comparison routers (embedding-exemplar, embedding-description, lexical) and "
                        "report them beside the gate; with --calibrate, calibrate them too")
    p.add_argument("--cases", action="append", default=[], metavar="FILE",
                   help="add an evals file in the same schema (split 'extra'); repeatable")
    p.add_argument("--config", default=None, help=f"thresholds and router parameters (default: {evals.DEFAULT_CONFIG})")
    p.add_argument("--root", default=str(evals.REPO_ROOT), help="repository root holding skills/ and evals/")
    p.add_argument("--output", default=str(evals.DEFAULT_OUTPUT),
                   help=f"JSON report path (default: {evals.DEFAULT_OUTPUT})")
    p.add_argument("--calibrate", action="store_true",
                   help="calibrate the gate router's parameters on the TRAIN split only (out-of-round) and write "
                        "them into the config; with --baselines also the comparison routers (the exemplar router "
                        "leave-one-out, the description-only routers directly)")
    p.add_argument("--cold", action="store_true",
                   help="time a cold run (MiniLM export and embeddings into a fresh cache) and then a warm run "
                        "(both cached)")
    p.add_argument("--agent-cmd", default=None,
                   help=f"agent CLI for --backend agent, split into argv (default: ${evals.agent.ENV_VAR}); "
                        "the query is appended, or replaces a {query} argument")
    p.add_argument("--agent-timeout", type=float, default=300.0, help="seconds per agent query (default 300)")
    p.add_argument("--quiet", action="store_true", help="print only the verdict line")
    p.add_argument("--gate", choices=["target", "floor"], default="target",
                   help="thresholds that decide the exit code: the acceptance target (default) or the "
                        "regression floor of the config (what CI enforces until the target is met); "
                        "the report always says whether the target is met")


ROUTING_EVALS = Command(
    "routing-evals", "run the skills' routing evals", configure, evals.run, raw_help=True, epilog=EPILOG,
    # it prints a report (routing-report), not a verdict; what stops it before the report is an envelope verdict
    schema="envelope", error_output=lambda args: None,  # --output is the report's file, never an error verdict's
    description="Run the skills' routing evals.\n\n" + __doc__.split("\n\n")[1])
