"""lm-evaluation-harness tasks through the day-0 conductor, for real: three offline task YAMLs (multiple
choice by log-likelihood, generate_until exact match, rolling log-likelihood) on the trained fixture LLM,
its fp32 baseline against int8 and int4 builds, per-sample records into the paired comparison."""
import json
import math

import pytest

from modelgate import fixtures
from modelgate.gates.compare import evaluate_compare
from modelgate.openvino import lmeval
from modelgate.release import records
from modelgate.release.conductor import Conductor, EvalOptions, resolve_source
from modelgate.release.recipes import get_recipe
from modelgate.release.workspace import Workspace
from tests.support.lmeval_tasks import write_tasks

pytestmark = pytest.mark.integration
TASKS = ["lm-eval:cf_mc", "lm-eval:cf_gen", "lm-eval:cf_ppl"]
RECIPES = ("int8_asym", "int4_asym_g32")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("lmeval-release")
    include = write_tasks(root / "tasks")
    ws = Workspace(root / "ws", "lmeval")
    recipes = [get_recipe(r) for r in RECIPES]
    cond = Conductor(ws, resolve_source(str(fixtures.hf_model("trained-llama"))),
                     EvalOptions(tasks=TASKS, include_path=str(include)), threshold=0.1, recipes=recipes,
                     timeout=600)
    chains = {r["name"]: cond.run_chain(r) for r in recipes}
    return ws, cond, chains


def _records(ws, variant_dir, summary, task):
    path = ws.path(variant_dir, "eval", summary["tasks"][task]["records_path"])
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_the_baseline_scores_what_the_trained_fixture_learned(run):
    _, _, chains = run
    base = chains["int8_asym"].summaries["baseline"]["tasks"]
    assert base["lm-eval:cf_mc"]["score"] == 1.0 and base["lm-eval:cf_mc"]["scored_samples"] == 38
    assert base["lm-eval:cf_gen"]["score"] == 1.0 and base["lm-eval:cf_gen"]["metric"] == "exact_match"
    ppl = base["lm-eval:cf_ppl"]
    assert ppl["metric"] == "bits_per_byte" and ppl["scale"] == "unbounded" and ppl["higher_is_better"] is False
    assert 0.1 < ppl["score"] < 3 and ppl["scored_samples"] == 26


def test_per_sample_records_reproduce_the_harness_scores_exactly(run):
    ws, _, chains = run
    for variant_dir, variant in (("baseline", "baseline"), ("candidate-int4_asym_g32", "candidate")):
        summary = chains["int4_asym_g32"].summaries[variant]
        harness = chains["int4_asym_g32"].eval_info[variant]["harness"]
        for task, metric in (("lm-eval:cf_mc", "acc,none"), ("lm-eval:cf_gen", "exact_match,first_word"),
                             ("lm-eval:cf_ppl", "bits_per_byte,none")):
            recs = _records(ws, variant_dir, summary, task)
            mean = math.fsum(r["score"] for r in recs) / len(recs)
            leaf = task.split(":")[1]
            assert math.isclose(mean, float(harness[task][leaf][metric]), rel_tol=1e-12, abs_tol=1e-12), task
            assert math.isclose(mean, summary["tasks"][task]["score"], rel_tol=1e-12, abs_tol=1e-12)
            assert all(len(r["doc_hash"]) == 64 for r in recs)


def test_the_eval_config_hash_covers_task_version_few_shot_and_data(run):
    _, cond, chains = run
    spec = cond.eval_config["task_specs"]["lm-eval:cf_gen"]
    leaf = spec["leaves"]["cf_gen"]
    assert leaf["version"] == 1.0 and leaf["num_fewshot"] == 0 and spec["fewshot_seed"] == lmeval.FEWSHOT_SEED
    assert len(leaf["data_sha256"]) == 64 and len(leaf["config_sha256"]) == 64
    shas = {c.summaries[v]["eval_config_sha256"] for c in chains.values() for v in ("baseline", "candidate")}
    assert len(shas) == 1
    assert cond.eval_config["properties"]["INFERENCE_PRECISION_HINT"] == "f32"
    runtime = chains["int8_asym"].eval_info["candidate"]["runtime"]["lm-eval"]
    assert runtime["INFERENCE_PRECISION_HINT"] == "f32" and runtime["KV_CACHE_PRECISION"] == "f32"


def test_int8_and_int4_builds_are_accepted_at_a_ten_point_threshold(run):
    _, _, chains = run
    for name in RECIPES:
        chain = chains[name]
        assert chain.verdict["decision"] == "ACCEPT", (name, chain.verdict["detail"])
        tasks = chain.compare["tasks"]
        assert {t["decision"] for t in tasks.values()} == {"ACCEPT"}
        assert all(t["stderr_source"] == "paired" for t in tasks.values())
    int8 = chains["int8_asym"].compare["tasks"]
    assert int8["lm-eval:cf_mc"]["drop"] == 0 and int8["lm-eval:cf_gen"]["drop"] == 0
    assert abs(int8["lm-eval:cf_ppl"]["drop"]) < 0.01  # int8 barely moves bits per byte


def test_thirty_eight_documents_cannot_resolve_a_one_point_threshold(run):
    ws, _, chains = run
    for name in RECIPES:
        base, cand = chains[name].summaries["baseline"], chains[name].summaries["candidate"]
        paired = records.paired_from_records(ws.path("baseline", "eval", "run_summary.json"), base,
                                             ws.path(f"candidate-{name}", "eval", "run_summary.json"), cand)
        verdict = evaluate_compare(base, cand, threshold=0.01, paired=paired)
        assert verdict["decision"] == "INDETERMINATE", name
        gen = verdict["tasks"]["lm-eval:cf_gen"]
        assert gen["decision"] == "INDETERMINATE" and gen["samples_needed"] > 38


def _eval_data_run(ws, tmp_path, kind, rows):
    from modelgate.openvino import evaluate as ev

    cfg = ev.make_eval_config([f"eval-data:{kind}"], eval_data=(kind, rows), data_root=tmp_path)
    summary, _ = ev.run_evaluation(ws.path("baseline", "ir"), cfg, tmp_path / "eval", variant="baseline",
                                   run_id="eval-data", model_label="baseline", data_root=tmp_path)
    task = summary["tasks"][f"eval-data:{kind}"]
    recs = [json.loads(line) for line in (tmp_path / "eval" / task["records_path"]).read_text().splitlines()]
    return task, {r["id"]: r for r in recs}


def test_eval_data_prompts_with_answers_are_scored_by_exact_or_contains_match(run, tmp_path):
    from modelgate import data

    ws, _, _ = run
    facts = data.color_facts()
    rows = [{"id": f"fact-{i}", "prompt": p, "answers": [a], "match": "exact", "max_new_tokens": 8}
            for i, (p, a) in enumerate(facts[:6])]
    rows += [{"id": "count", "prompt": "one two", "answers": ["three"], "match": "contains", "max_new_tokens": 8},
             {"id": "wrong", "prompt": facts[0][0], "answers": ["turquoise"], "match": "exact", "max_new_tokens": 8}]
    task, recs = _eval_data_run(ws, tmp_path, "qa", rows)
    assert task["metric"] == "qa_match" and task["scored_samples"] == len(rows)
    assert all(recs[f"fact-{i}"]["score"] == 1.0 for i in range(6)), recs  # the trained facts, by exact match
    assert recs["count"]["score"] == 1.0 and "three" in recs["count"]["prediction"]  # contains
    assert recs["wrong"]["score"] == 0.0 and recs["wrong"]["reference"] == ["turquoise"]


def test_eval_data_multiple_choice_runs_through_the_harness_by_log_likelihood(run, tmp_path):
    from modelgate import data

    ws, _, _ = run
    palette = sorted({a for _, a in data.color_facts()})
    rows = [{"id": f"c{i}", "prompt": p, "choices": palette, "answer": palette.index(a)}
            for i, (p, a) in enumerate(data.color_facts()[:10])]
    task, recs = _eval_data_run(ws, tmp_path, "choice", rows)
    assert task["metric"] == "acc" and task["score"] == 1.0 and set(recs) == {r["id"] for r in rows}
    assert all(len(r["prediction"]) == len(palette) for r in recs.values())  # a log-likelihood per choice


def test_eval_data_plain_text_is_scored_by_rolling_log_likelihood_in_bits_per_byte(run, tmp_path):
    from modelgate import data

    ws, _, _ = run
    learned = data.trained_lm_corpus()[:4]
    rows = [{"id": f"t{i}", "text": t} for i, t in enumerate(learned)]
    rows.append({"id": "noise", "text": "qzx vlorp 88 ;; kwy bnnt zzq"})
    task, recs = _eval_data_run(ws, tmp_path, "text", rows)
    assert task["metric"] == "bits_per_byte" and task["higher_is_better"] is False
    assert task["scored_samples"] == len(rows)
    assert math.isclose(math.fsum(r["score"] for r in recs.values()) / len(recs), task["score"], rel_tol=1e-12)
    assert all(recs[f"t{i}"]["score"] < recs["noise"]["score"] for i in range(4))  # what it learned costs fewer bits
