"""Eval task registry and config parity (no model runs)."""
import pytest

from modelgate.contract import GateInputError
from modelgate.openvino import evaluate as ev


def test_default_tasks_follow_the_model_kind():
    assert ev.resolve_tasks(None, "llm") == ["lm_exact_match", "lm_perplexity"]
    assert ev.resolve_tasks(None, "classifier") == ["digits_top1"]


def test_unknown_or_inapplicable_tasks_are_input_errors():
    with pytest.raises(GateInputError, match="unknown eval task"):
        ev.resolve_tasks(["mmlu"], "llm")
    with pytest.raises(GateInputError, match="do not apply"):
        ev.resolve_tasks(["digits_top1"], "llm")


def test_eval_config_hash_is_identical_for_identical_requests_and_changes_with_the_limit():
    a = ev.make_eval_config(["lm_exact_match"], limit=10)
    b = ev.make_eval_config(["lm_exact_match"], limit=10)
    c = ev.make_eval_config(["lm_exact_match"], limit=11)
    assert ev.eval_config_sha256(a) == ev.eval_config_sha256(b) != ev.eval_config_sha256(c)
    assert a["task_specs"]["lm_exact_match"]["samples"] == 10


@pytest.mark.parametrize("limit", [0, 1, -5, 2.5, True])
def test_a_limit_that_cannot_give_a_standard_error_is_refused(limit):
    with pytest.raises(GateInputError):
        ev.make_eval_config(["digits_top1"], limit=limit)


def test_every_task_declares_scale_direction_and_a_known_model_kind():
    for name, spec in ev.TASKS.items():
        assert spec["scale"] in ("unit", "percent", "unbounded"), name
        assert isinstance(spec["higher_is_better"], bool)
        assert spec["model_kind"] in ev.DEFAULT_TASKS
        assert callable(getattr(ev, spec["body"]))


def test_exact_match_data_has_one_known_answer_per_prompt_and_unique_ids():
    items = ev.exact_match_samples()
    assert len({i["id"] for i in items}) == len(items) >= 30
    assert all(isinstance(i["reference"], str) and i["reference"] for i in items)
