"""Pure scoring of routing results."""
from modelgate.routing.metrics import score

SKILLS = ["a-skill", "b-skill"]


def _r(name, expected, predicted, should_trigger=None):
    st = expected != "none" if should_trigger is None else should_trigger
    return {"name": name, "query": name, "expected": expected, "predicted": predicted,
            "should_trigger": st, "skill": "a-skill", "split": "train"}


def test_precision_recall_f1_follow_the_confusion_matrix():
    results = [_r("1", "a-skill", "a-skill"), _r("2", "a-skill", "none"), _r("3", "b-skill", "a-skill"),
               _r("4", "none", "none"), _r("5", "b-skill", "b-skill")]
    m = score(results, SKILLS)
    a = m["per_skill"]["a-skill"]
    assert (a["tp"], a["fp"], a["fn"]) == (1, 1, 1)
    assert a["precision"] == 0.5 and a["recall"] == 0.5 and a["f1"] == 0.5
    b = m["per_skill"]["b-skill"]
    assert b["precision"] == 1.0 and b["recall"] == 0.5
    assert m["confusion"]["labels"] == ["a-skill", "b-skill", "none"]
    assert m["confusion"]["matrix"] == [[1, 0, 1], [1, 1, 0], [0, 0, 1]]
    assert m["accuracy"] == 3 / 5 and m["correct"] == 3
    assert [x["name"] for x in m["misrouted"]] == ["2", "3"]


def test_negative_routed_to_any_skill_is_a_false_trigger_when_it_belongs_to_none():
    m = score([_r("n1", "none", "b-skill", should_trigger=False)], SKILLS)
    assert m["false_triggers"] == 1 and m["false_trigger_cases"] == ["n1"]


def test_near_miss_routed_to_its_sibling_is_correct_not_a_false_trigger():
    m = score([_r("n2", "b-skill", "b-skill", should_trigger=False)], SKILLS)
    assert m["false_triggers"] == 0 and m["accuracy"] == 1.0


def test_near_miss_that_lands_on_none_instead_of_its_sibling_is_a_miss_but_not_a_false_trigger():
    m = score([_r("n3", "b-skill", "none", should_trigger=False)], SKILLS)
    assert m["false_triggers"] == 0 and m["accuracy"] == 0.0


def test_precision_without_predictions_is_none_not_a_perfect_score():
    m = score([_r("1", "none", "none")], SKILLS)
    assert m["per_skill"]["a-skill"]["precision"] is None
    assert m["per_skill"]["a-skill"]["recall"] is None
    assert m["per_skill"]["a-skill"]["f1"] is None


def test_unknown_label_is_rejected():
    import pytest
    with pytest.raises(ValueError):
        score([_r("1", "c-skill", "none")], SKILLS)
