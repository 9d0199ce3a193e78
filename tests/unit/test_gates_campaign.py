"""How a run blocked by lost Ray workers or nodes reads (pure): still Crashed and BLOCKED, but its
failure class and next action say that the infrastructure failed and the cells need a rerun."""
import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelgate.gates.campaign import campaign_outcome, infrastructure_losses, model_failure_class, model_next_action
from modelgate.gates.mqs import score
from tests.unit.cert_builders import evidence, record


def rec(rid, outcome, gateway=None, category="QUAL"):
    return record(category, outcome, gateway=gateway, id=rid)


def _lost(rid, gateway="G3", category="STAB"):
    return dict(rec(rid, "Crashed", gateway=gateway, category=category), failure_class="INFRA_TRANSIENT")


def _clean_records():
    return [rec(f"ok-{g}", "Corroborated", gateway=g, category=c)
            for g, c in (("G0", "COMP"), ("G1", "COMP"), ("G2", "QUAL"), ("G3", "STAB"), ("G4", "REGR"))]


def evidence_of(records):
    return evidence(records, with_gateways=False)


def test_a_model_blocked_only_by_lost_cells_is_infra_transient_and_told_to_rerun():
    records = [*_clean_records(), _lost("gpu/hang@cell")]
    sc = score(evidence_of(records))
    losses = infrastructure_losses(records)
    assert sc["status"] == "BLOCKED" and sc["penalties"]["crashed"] == 1  # still Crashed: never a pass
    assert losses == ["gpu/hang@cell"]
    cls = model_failure_class(sc, losses)
    assert cls == "INFRA_TRANSIENT"
    action = model_next_action(cls, losses)
    assert action.startswith("rerun") and "gpu/hang@cell" in action and "not the model" in action


def test_a_real_failure_next_to_a_lost_cell_stays_gateway_failed_and_mentions_both():
    records = [*_clean_records(), _lost("gpu/hang@cell"), rec("cpu/crash@cell", "Crashed", gateway="G3",
                                                             category="STAB")]
    sc = score(evidence_of(records))
    losses = infrastructure_losses(records)
    cls = model_failure_class(sc, losses)
    assert cls == "GATEWAY_FAILED"
    action = model_next_action(cls, losses)
    assert "report.md" in action and "rerun" in action


def test_a_gateway_without_evidence_is_never_blamed_on_infrastructure():
    # G4 has only skipped records: it fails for lack of evidence, which a rerun of lost cells cannot fix
    records = [r for r in _clean_records() if r["gateway"] != "G4"] + [rec("g4@x", "Skipped", gateway="G4"),
                                                                       _lost("gpu/hang@cell")]
    sc = score(evidence_of(records))
    assert model_failure_class(sc, infrastructure_losses(records)) == "GATEWAY_FAILED"


def test_a_crash_of_the_cell_itself_is_not_an_infrastructure_loss():
    records = [*_clean_records(), dict(rec("c@cell", "Crashed", gateway="G3", category="STAB"),
                                       failure_class="PLUGIN_CRASH")]
    assert infrastructure_losses(records) == []
    assert model_failure_class(score(evidence_of(records)), []) == "GATEWAY_FAILED"


def test_a_certified_model_has_no_failure_class_and_nothing_to_do():
    sc = score(evidence_of(_clean_records()))
    assert model_failure_class(sc, []) is None and model_next_action(None, []) == "none"


STATUS = st.sampled_from(["CERTIFIED", "PROVISIONAL", "BLOCKED", "PENDING"])
CLASS_OF = {"CERTIFIED": [None], "PROVISIONAL": [None], "PENDING": ["USER_CONFIG_ERROR"],
            "BLOCKED": ["GATEWAY_FAILED", "MQS_BELOW_THRESHOLD", "INFRA_TRANSIENT"]}


@st.composite
def models(draw):
    out = []
    for status in draw(st.lists(STATUS, min_size=1, max_size=6)):
        out.append({"status": status, "failure_class": draw(st.sampled_from(CLASS_OF[status]))})
    return out


@given(models())
def test_a_campaign_passes_only_when_every_model_passes_and_reports_its_worst(ms):
    out = campaign_outcome(ms)
    assert out["pass"] == all(m["failure_class"] is None for m in ms)
    order = ["BLOCKED", "PENDING", "PROVISIONAL", "CERTIFIED"]
    assert out["decision"] == min((m["status"] for m in ms), key=order.index)
    classes = {m["failure_class"] for m in ms} - {None}
    if classes == {"INFRA_TRANSIENT"}:
        assert out["failure_class"] == "INFRA_TRANSIENT"  # infrastructure is all that failed
    elif "GATEWAY_FAILED" in classes:
        assert out["failure_class"] == "GATEWAY_FAILED"
    assert (out["failure_class"] is None) == out["pass"]


def test_an_empty_campaign_cannot_pass():
    assert campaign_outcome([])["pass"] is False


def test_the_certification_reference_documents_infrastructure_losses():
    from pathlib import Path

    from modelgate.contract import failure_classes

    text = (Path(__file__).resolve().parents[2] / "skills" / "model-certification" / "references" /
            "failure-classes.md").read_text()
    assert "## INFRA_TRANSIENT\n\nEmitted by: the runner on Ray" in text
    assert failure_classes()["INFRA_TRANSIENT"] in text


def test_the_certifications_own_next_step_is_kept_and_a_rerun_added_only_for_losses():
    own = "the model failed G2: open report.html (failures first) and start with x@cell"
    assert model_next_action("GATEWAY_FAILED", [], own) == own
    both = model_next_action("GATEWAY_FAILED", ["gpu/hang@cell"], own)
    assert both.startswith(own) and "rerun" in both and "gpu/hang@cell" in both
    # blocked only by lost cells: the rerun, not a finding against the model
    assert model_next_action("INFRA_TRANSIENT", ["gpu/hang@cell"], own).startswith("rerun")
    # a pass keeps what the certification says about coverage
    assert model_next_action(None, [], "none for what was exercised; ...") == "none for what was exercised; ..."


@pytest.mark.parametrize("field,value", [("retries", True), ("retries", -1), ("retries", 10**10),
                                         ("cpus_per_unit", False), ("cpus_per_unit", 0),
                                         ("cpus_per_unit", 10**400)])
def test_executor_counts_are_integers_in_range_never_booleans(field, value):
    import argparse

    from modelgate.cli.cluster import check_executor_args
    from modelgate.contract import GateInputError

    args = argparse.Namespace(executor="local", ray_address=None, retries=2, cpus_per_unit=1)
    setattr(args, field, value)
    with pytest.raises(GateInputError) as exc:
        check_executor_args(args)
    assert exc.value.failure_class == "USER_CONFIG_ERROR"
