"""Eval task registry, defaults and config parity (no model runs)."""
import pytest

from modelgate.contract import GateInputError
from modelgate.openvino import evaluate as ev


def test_an_llm_is_judged_by_answer_similarity_and_an_encoder_by_embedding_similarity_by_default():
    assert ev.resolve_tasks(None, "llm") == ["answer-similarity"]
    assert ev.resolve_tasks(None, "encoder") == ["embedding-similarity"]


def test_fixture_tasks_are_never_a_default_for_any_model_kind():
    for kind, tasks in ev.DEFAULT_TASKS.items():
        assert not [t for t in tasks if t.startswith("fixture:")], kind
    assert all(name.startswith("fixture:") for name, t in ev.TASKS.items() if t["engine"] == "fixture")


def test_a_classifier_without_eval_data_is_told_how_to_give_it_data():
    with pytest.raises(GateInputError) as exc:
        ev.resolve_tasks(None, "classifier")
    assert exc.value.failure_class == "USER_CONFIG_ERROR"
    assert "--eval-data" in exc.value.detail and "fixture:digits" in exc.value.detail


def test_eval_data_replaces_the_default_and_adds_to_named_tasks():
    assert ev.resolve_tasks(None, "llm", "qa") == ["eval-data:qa"]
    assert ev.resolve_tasks(["lm-eval:arc_easy"], "llm", "prompt") == ["lm-eval:arc_easy", "eval-data:prompt"]
    assert ev.resolve_tasks(None, "classifier", "image") == ["eval-data:image"]


@pytest.mark.parametrize("tasks,kind,data,needle", [
    (["mmlu"], "llm", None, "unknown eval task"),
    (["fixture:digits"], "llm", None, "does not apply"),
    (["lm_exact_match"], "llm", None, "fixture:color-facts"),
    (["digits_top1"], "classifier", None, "fixture:digits"),
    (["lm-eval:arc easy"], "llm", None, "lm-eval:<task>"),
    (["lm-eval:../../etc"], "llm", None, "lm-eval:<task>"),
    (["lm-eval:arc_easy"], "encoder", None, "evaluate LLMs"),
    (["eval-data:qa"], "llm", None, "--eval-data FILE"),
    (None, "llm", "image", "for classifier models"),
    (None, "classifier", "pair", "for encoder models"),
])
def test_unknown_renamed_or_inapplicable_tasks_are_input_errors(tasks, kind, data, needle):
    with pytest.raises(GateInputError) as exc:
        ev.resolve_tasks(tasks, kind, data)
    assert exc.value.failure_class == "USER_CONFIG_ERROR" and needle in exc.value.detail


def test_lm_eval_names_accept_a_metric_override():
    assert ev.resolve_tasks(["lm-eval:hellaswag@acc_norm"], "llm") == ["lm-eval:hellaswag@acc_norm"]


def test_eval_config_hash_is_identical_for_identical_requests_and_changes_with_limit_and_precision():
    a = ev.make_eval_config(["fixture:color-facts"], limit=10)
    b = ev.make_eval_config(["fixture:color-facts"], limit=10)
    c = ev.make_eval_config(["fixture:color-facts"], limit=11)
    d = ev.make_eval_config(["fixture:color-facts"], limit=10, precision="served")
    assert ev.eval_config_sha256(a) == ev.eval_config_sha256(b)
    assert len({ev.eval_config_sha256(x) for x in (a, c, d)}) == 3
    assert a["task_specs"]["fixture:color-facts"]["samples"] == 10
    assert a["properties"] == {"EXECUTION_MODE_HINT": "ACCURACY", "INFERENCE_PRECISION_HINT": "f32"}
    assert d["properties"] == {}


def test_answer_similarity_config_names_its_prompts_generation_and_embedder():
    cfg = ev.make_eval_config(["answer-similarity"])
    spec = cfg["task_specs"]["answer-similarity"]
    assert spec["samples"] == 240 and len(spec["data_sha256"]) == 64
    assert spec["generation"]["max_new_tokens"] == 32 and spec["generation"]["do_sample"] is False
    assert spec["embedder"]["package_version"] and len(spec["embedder"]["weights_sha256"]) == 64


@pytest.mark.parametrize("limit", [0, 1, -5, 2.5, True])
def test_a_limit_that_cannot_give_a_standard_error_is_refused(limit):
    with pytest.raises(GateInputError):
        ev.make_eval_config(["fixture:digits"], limit=limit)


def test_an_unknown_eval_precision_is_refused():
    with pytest.raises(GateInputError, match="--eval-precision"):
        ev.make_eval_config(["fixture:color-facts"], precision="int3")


def test_every_task_declares_scale_direction_model_kind_and_a_default_threshold():
    for name, spec in ev.TASKS.items():
        assert spec["scale"] in ("unit", "percent", "unbounded"), name
        assert isinstance(spec["higher_is_better"], bool)
        assert spec["model_kind"] in ev.DEFAULT_TASKS
        assert 0 < spec["default_threshold"] < 1
        assert "body" not in spec or callable(getattr(ev, spec["body"]))
    for kind, spec in ev.EVAL_DATA_TASKS.items():
        assert "body" not in spec or callable(getattr(ev, spec["body"])), kind


def test_a_default_threshold_exists_only_when_the_tasks_agree_on_one():
    assert ev.default_threshold(["answer-similarity"])[0] == 0.05
    assert ev.default_threshold(["lm-eval:arc_easy", "eval-data:qa"])[0] == 0.01
    value, per = ev.default_threshold(["answer-similarity", "lm-eval:arc_easy"])
    assert value is None and per == {"answer-similarity": 0.05, "lm-eval:arc_easy": 0.01}


def test_exact_match_fixture_data_has_one_known_answer_per_prompt_and_unique_ids():
    items = ev.exact_match_samples()
    assert len({i["id"] for i in items}) == len(items) >= 30
    assert all(isinstance(i["reference"], str) and i["reference"] for i in items)


def test_the_builtin_prompt_set_is_large_varied_and_unique():
    prompts = ev.similarity_samples()
    assert len(prompts) >= 200
    assert len({p["id"] for p in prompts}) == len({p["input"] for p in prompts}) == len(prompts)
    from modelgate.openvino.similarity import builtin_prompts

    assert len({p["domain"] for p in builtin_prompts()}) >= 6
