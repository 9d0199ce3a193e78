"""Hub ids: resolved through huggingface_hub from a cache built in the hub's layout under a temporary
HF_HOME (HF_HUB_OFFLINE=1), verified exactly like a local folder; the verdict names the id and the
revision. An id that is neither cached nor reachable ends SOURCE_UNAVAILABLE (exit 2) within seconds."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from modelgate import contract, family_fixtures
from modelgate.contract import GateInputError
from modelgate.verify import hub
from tests.support import hub_cache

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
REPO = "acme/tiny-bert-qa"


@pytest.fixture
def hf_home(tmp_path, monkeypatch):
    home = tmp_path / "hf"
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_CACHE", str(home / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    rev = hub_cache.add_model(home, REPO, family_fixtures.family_model("bert-qa"))
    return home, rev


def test_cached_id_resolves_to_its_snapshot_and_revision(hf_home):
    home, rev = hf_home
    r = hub.resolve(REPO)
    assert (r.hub_id, r.revision, r.resolved_from) == (REPO, rev, "cache")
    assert Path(r.path) == home / "hub" / "models--acme--tiny-bert-qa" / "snapshots" / rev
    assert (Path(r.path) / "config.json").is_file()
    assert hub.resolve(REPO, revision=rev).path == r.path          # pinned to the commit
    with pytest.raises(GateInputError):
        hub.resolve(REPO, revision="0" * 40)                        # a revision the cache does not hold


def test_uncached_id_offline_is_source_unavailable_within_seconds(hf_home):
    t0 = time.monotonic()
    with pytest.raises(GateInputError) as exc:
        hub.resolve("acme/not-cached")
    assert exc.value.failure_class == "SOURCE_UNAVAILABLE" and time.monotonic() - t0 < 5
    assert "HF_HUB_OFFLINE" in str(exc.value)


def test_uncached_id_with_an_unreachable_hub_is_source_unavailable_within_seconds(hf_home, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")   # nothing listens: refused at once
    t0 = time.monotonic()
    with pytest.raises(GateInputError) as exc:
        hub.resolve("acme/not-cached", answer_seconds=2)
    assert exc.value.failure_class == "SOURCE_UNAVAILABLE" and time.monotonic() - t0 < 5


def run_cli(args, env, timeout=600):
    return subprocess.run([sys.executable, "-m", "modelgate", "verify", *map(str, args)], capture_output=True,
                          text=True, cwd=ROOT, env=env, timeout=timeout)


def test_cli_verifies_a_cached_hub_id_like_a_local_folder_and_records_the_revision(hf_home, tmp_path):
    home, rev = hf_home
    env = dict(os.environ, HF_HOME=str(home), HF_HUB_CACHE=str(home / "hub"), HF_HUB_OFFLINE="1")
    p = run_cli(["--model", REPO, "--output", tmp_path / "out"], env)
    v = json.loads(p.stdout)
    assert contract.schema_errors("verify-result", v) == []
    assert p.returncode == 0 and v["decision"] == "VERIFIED", v["detail"]
    assert v["source"] == {"hub_id": REPO, "revision": rev, "resolved_from": "cache"}
    assert v["task"] == "question-answering" and v["family"] == "question-answering"
    assert Path(v["evidence"]["source_snapshot"]).name == rev


def test_cli_uncached_hub_id_offline_exits_2_source_unavailable_fast(hf_home):
    home, _ = hf_home
    env = dict(os.environ, HF_HOME=str(home), HF_HUB_CACHE=str(home / "hub"), HF_HUB_OFFLINE="1")
    t0 = time.monotonic()
    p = run_cli(["--model", "acme/not-cached"], env)
    v = json.loads(p.stdout)
    assert p.returncode == 2 and v["failure_class"] == "SOURCE_UNAVAILABLE" and "Traceback" not in p.stderr
    assert time.monotonic() - t0 < 20   # process start + imports; the lookup itself is well under a second


def test_the_cache_is_looked_up_where_the_environment_names_it_now(tmp_path, monkeypatch, hf_home):
    """huggingface_hub reads HF_HOME once, at its first import: a later setting must still be honoured."""
    import huggingface_hub  # noqa: F401 - imported first, under whatever HF_HOME was before

    home, rev = hf_home
    assert hub.resolve(REPO).revision == rev
    other = tmp_path / "elsewhere"
    monkeypatch.setenv("HF_HOME", str(other))
    monkeypatch.setenv("HF_HUB_CACHE", str(other / "hub"))
    with pytest.raises(GateInputError) as exc:
        hub.resolve(REPO)
    assert exc.value.failure_class == "SOURCE_UNAVAILABLE"
