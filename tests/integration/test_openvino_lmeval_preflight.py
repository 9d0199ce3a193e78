"""The lm-eval preflight on offline task YAMLs: specs and refusals, before any model is loaded (one child
process per preflight, offline, as the conductor runs it)."""
import json
import shutil

import pytest

from modelgate.contract import GateInputError
from modelgate.openvino import lmeval
from tests.support.lmeval_tasks import write_tasks, write_unreachable_task

pytestmark = pytest.mark.integration
REQUESTS = [{"name": f"lm-eval:{t}", "task": t, "metric": None} for t in ("cf_mc", "cf_gen", "cf_ppl")]


@pytest.fixture(scope="module")
def specs(tmp_path_factory):
    root = tmp_path_factory.mktemp("tasks-a")
    write_tasks(root)
    return lmeval.preflight(REQUESTS, include_path=str(root), data_dir=root / "data", limit=None, num_fewshot=None)


def test_preflight_specs_name_version_fewshot_metric_and_the_datas_hash(specs):
    mc, gen, ppl = (specs[r["name"]] for r in REQUESTS)
    assert (mc["samples"], gen["samples"], ppl["samples"]) == (38, 38, 26)
    assert (mc["pack_metric"], gen["pack_metric"], ppl["pack_metric"]) == ("acc", "exact_match", "bits_per_byte")
    assert ppl["scale"] == "unbounded" and ppl["higher_is_better"] is False and ppl["records"] == "ratio"
    leaf = mc["leaves"]["cf_mc"]
    assert leaf["version"] == 1.0 and leaf["num_fewshot"] == 0 and mc["fewshot_seed"] == lmeval.FEWSHOT_SEED
    assert len(leaf["data_sha256"]) == len(leaf["config_sha256"]) == 64


def test_specs_do_not_depend_on_where_the_task_files_live_but_on_what_they_say(specs, tmp_path):
    moved = tmp_path / "elsewhere"
    write_tasks(moved)
    docs = moved / "cf_gen.jsonl"
    lines = docs.read_text().splitlines()
    first = json.loads(lines[0])
    first["answer"] = "purple" if first["answer"] != "purple" else "green"
    docs.write_text("\n".join([json.dumps(first, sort_keys=True)] + lines[1:]) + "\n")
    again = lmeval.preflight(REQUESTS, include_path=str(moved), data_dir=moved / "data", limit=None,
                             num_fewshot=None)
    assert again["lm-eval:cf_mc"] == specs["lm-eval:cf_mc"] and again["lm-eval:cf_ppl"] == specs["lm-eval:cf_ppl"]
    a, b = specs["lm-eval:cf_gen"]["leaves"]["cf_gen"], again["lm-eval:cf_gen"]["leaves"]["cf_gen"]
    assert a["data_sha256"] != b["data_sha256"] and a["config_sha256"] != b["config_sha256"]


def test_few_shot_and_limit_change_the_spec(specs, tmp_path):
    write_tasks(tmp_path)
    two = lmeval.preflight(REQUESTS[:1], include_path=str(tmp_path), data_dir=tmp_path / "data", limit=5,
                           num_fewshot=2)["lm-eval:cf_mc"]
    assert two["samples"] == 5 and two["leaves"]["cf_mc"]["num_fewshot"] == 2
    assert two["leaves"]["cf_mc"]["data_sha256"] != specs["lm-eval:cf_mc"]["leaves"]["cf_mc"]["data_sha256"]


def test_a_dataset_neither_cached_nor_reachable_is_source_unavailable_without_touching_the_network(tmp_path):
    write_unreachable_task(tmp_path)
    with pytest.raises(GateInputError) as exc:
        lmeval.preflight([{"name": "lm-eval:cf_unreachable", "task": "cf_unreachable"}], include_path=str(tmp_path),
                         data_dir=tmp_path / "data", limit=None, num_fewshot=None, timeout=120)
    assert exc.value.failure_class == "SOURCE_UNAVAILABLE" and exc.value.exit_code == 2
    assert "OfflineModeIsEnabled" in exc.value.detail  # refused by the offline switch, not by a network timeout


def test_a_corrupt_local_data_file_and_a_corpus_level_metric_are_input_errors(tmp_path):
    write_tasks(tmp_path)
    with open(tmp_path / "cf_mc.jsonl", "a") as fh:
        fh.write('{"id": "broken", "question": \n')
    with pytest.raises(GateInputError) as exc:
        lmeval.preflight(REQUESTS[:1], include_path=str(tmp_path), data_dir=tmp_path / "data", limit=None,
                         num_fewshot=None)
    assert exc.value.failure_class == "USER_CONFIG_ERROR" and "cf_mc" in exc.value.detail
    shutil.rmtree(tmp_path / "data")
    write_tasks(tmp_path)
    yaml = tmp_path / "cf_gen.yaml"
    yaml.write_text(yaml.read_text().replace("metric: exact_match", "metric: f1"))
    with pytest.raises(GateInputError) as exc:
        lmeval.preflight(REQUESTS[1:2], include_path=str(tmp_path), data_dir=tmp_path / "data", limit=None,
                         num_fewshot=None)
    assert exc.value.failure_class == "USER_CONFIG_ERROR" and "per-sample form" in exc.value.detail


def test_a_malformed_task_name_is_refused_before_any_child_starts():
    with pytest.raises(GateInputError, match="not an lm-eval task name"):
        lmeval.preflight([{"name": "lm-eval:x y", "task": "x y"}], include_path=None, data_dir="/nonexistent",
                         limit=None, num_fewshot=None)
