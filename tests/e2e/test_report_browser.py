"""The certification HTML report in a real browser (headless Chromium through Playwright, the system
browser, no download): the first failure is in the first viewport at 1280x800, nothing overflows
horizontally from 1024 to 1920 px, the records filter works, the page loads nothing from outside and
prints without its controls. Screenshots go to build/report-screenshots/ (CI keeps them as artifacts).

Never skipped: without Chromium or Playwright the test fails and says how to install them
(``.ci/run`` installs Chromium from the system package manager when it is missing)."""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
from cert_builders import header, record  # noqa: E402

from modelgate.certify.reports import write_reports  # noqa: E402
from modelgate.gates.mqs import score  # noqa: E402

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "build" / "report-screenshots"
# the network is closed: nothing may phone home or update itself
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]
FORMATS = ("safetensors", "openvino-fp32", "openvino-fp16", "openvino-int8")
SCENARIOS = ("prompts", "arithmetic", "edge", "determinism", "facts")
LONG = "x" * 400  # an unbroken token: must wrap, never widen the page
EVIL = '<script>alert(1)</script> [x](http://evil.example) | `tick`'


def chromium() -> str:
    """The system Chromium: $MODELGATE_CHROMIUM, else chromium on PATH, else /usr/bin/chromium."""
    for candidate in (os.environ.get("MODELGATE_CHROMIUM"), shutil.which("chromium"),
                      shutil.which("chromium-browser"), "/usr/bin/chromium"):
        if candidate and Path(candidate).is_file():
            return candidate
    pytest.fail("Chromium is required for the report browser test and was not found: install it with "
                "`apt-get update && apt-get install -y chromium chromium-driver` (.ci/run does this) or point "
                "MODELGATE_CHROMIUM at a Chromium binary")


def _mvp_like(blocked: bool) -> dict:
    """Evidence shaped like an mvp run: ~300 records over formats x devices x modalities x scenarios."""
    recs = []
    for fmt in FORMATS:
        for dev in ("CPU", "GPU"):
            for mod in ("run", "chat", "serve"):
                for sc in SCENARIOS:
                    cell = {"format": fmt, "device": dev, "modality": mod, "scenario": sc}
                    cid = f"{fmt}/{dev}/{mod}/{sc}"
                    if dev == "GPU" or mod == "serve":
                        recs.append(record("STAB", "Skipped", gateway="G3", id=f"{cid}@cell", cell=cell, output=None,
                                           reason=f"device {dev} not present on this host (available: CPU)"
                                           if dev == "GPU" else "no serving endpoint configured in the playbook"))
                        continue
                    recs += [record("STAB", gateway="G3", id=f"{cid}@cell", cell=cell),
                             record("COMP", gateway="G1", id=f"{cid}@load", cell=cell),
                             record("QUAL", gateway="G2", id=f"{cid}@infer", cell=cell),
                             record("PERF", id=f"{cid}@tps", cell=cell),
                             record("QUAL", gateway="G4", id=f"{cid}@degenerate-0", cell=cell),
                             record("REGR", gateway="G4", id=f"{cid}@reference", cell=cell),
                             record("EDGE", gateway="G2", id=f"{cid}@edge-0", cell=cell)]
    gt = {"format": "safetensors", "device": "CPU", "modality": "run", "scenario": "ground-truth"}
    recs.append(record("COMP", gateway="G0", id="safetensors/CPU/run/ground-truth@integrity", cell=gt))
    for fmt in FORMATS[1:]:
        cell = {"format": fmt, "device": "CPU", "modality": "contract", "scenario": "contract"}
        recs += [record(cat, gateway=g, id=f"{fmt}/CPU/contract/contract@{k}", cell=cell)
                 for k, cat, g in (("i1", "REGR", "G4"), ("i2", "COMP", "G0"), ("i5", "COMP", "G1"))]
    if blocked:
        broken = {"format": "openvino-fp16", "device": "CPU", "modality": "run", "scenario": "prompts"}
        for r in recs:
            if r["id"] == "openvino-fp16/CPU/run/prompts@degenerate-0":
                r.update(outcome="Falsified", reason="output ends in a loop repeating 'HH' (period 1)",
                         output="the color of sky is HHHHHHHHHHHHHHHHHHHHHHHHHHHHHH" + LONG,
                         failure_class="DEGENERATE_OUTPUT")
            if r["id"] == "openvino-fp16/CPU/run/prompts@reference":
                r.update(outcome="Falsified", reason="mean greedy-token agreement 0.125 < 0.9 over 2 prompts",
                         output="the color of sky is green . " + EVIL, expected="the color of sky is blue .",
                         metrics={"agreement": 0.125, "inference_precision": "bf16"})
        recs.append(record("STAB", "Crashed", gateway="G3", id="openvino-int8/CPU/chat/facts@cell2",
                           cell=dict(broken, format="openvino-int8", modality="chat", scenario="facts"),
                           reason="PLUGIN_CRASH: child process died (signal SIGSEGV) " + LONG, output=None,
                           failure_class="PLUGIN_CRASH"))
        recs.append(record("QUAL", "Falsified", id="openvino-fp32/CPU/run/arithmetic@arithmetic-0",
                           cell=dict(broken, format="openvino-fp32", scenario="arithmetic"),
                           reason="'What is 7 times 6?': answer 41 != expected 42", output="41", expected="42"))
    doc = header(model="path:my-llm@0123456789abcdef" + ("" if not blocked else " " + EVIL),
                 playbook="my-llm-mvp", tier="mvp", playbook_lock="verified",
                 matrix={"formats": list(FORMATS), "devices": ["CPU", "GPU"],
                         "modalities": ["run", "chat", "serve", "contract"],
                         "scenarios": [*SCENARIOS, "ground-truth", "contract"]}, records=recs)
    return doc


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    out = {}
    for name, blocked in (("blocked", True), ("certified", False)):
        doc = _mvp_like(blocked)
        s = score(doc)
        assert s["status"] == ("BLOCKED" if blocked else "CERTIFIED"), s["status"]
        folder = tmp_path_factory.mktemp(name)
        out[name] = (Path(write_reports(doc, s, folder)["html"]), doc, s)
    return out


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    exe = chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the report browser test needs the playwright Python package: pip install -e '.[test]' "
                    "(no browser download: the system Chromium is used)")
    profile = tmp_path_factory.mktemp("chromium-profile")  # a fresh --user-data-dir
    with sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(str(profile), executable_path=exe, headless=True,
                                                   args=CHROMIUM_FLAGS, viewport={"width": 1280, "height": 800})
        yield ctx
        ctx.close()


def _open(ctx, path: Path, width: int, height: int = 800):
    page = ctx.new_page()
    external = []
    page.on("request", lambda req: external.append(req.url) if not req.url.startswith("file:") else None)
    page.set_viewport_size({"width": width, "height": height})
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    return page, external


def _overflow(page) -> int:
    return page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")


def test_blocked_report_shows_the_verdict_and_first_failure_in_the_first_viewport(browser, reports):
    path, doc, s = reports["blocked"]
    page, external = _open(browser, path, 1280)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "blocked-1280x800.png"))
    verdict = page.locator("#verdict")
    assert "BLOCKED" in verdict.inner_text() and "Failed gateways: G3 stability" in verdict.inner_text()
    first = page.locator("#failure-1").bounding_box()
    assert first is not None and first["y"] >= 0 and first["y"] + 60 <= 800, first  # its heading is on screen
    assert "Hypothesis" in page.locator("#failure-1").inner_text()
    # failures grouped gateway -> format x device x modality, the expected/actual diff highlighted
    g4 = page.locator("#gw-G4")
    assert g4.is_visible() and "2 failed record(s)" in g4.inner_text()
    assert page.locator("#failures del").count() > 0 and page.locator("#failures ins").count() > 0
    assert page.locator("script").count() == 1 and not page.evaluate("window.__pwned === true")
    assert external == []


@pytest.mark.parametrize("width", [1024, 1280, 1920])
@pytest.mark.parametrize("name", ["blocked", "certified"])
def test_no_horizontal_overflow_from_1024_to_1920_px(browser, reports, name, width):
    page, _ = _open(browser, reports[name][0], width)
    assert _overflow(page) <= 0, f"{name} report overflows by {_overflow(page)} px at {width} px"
    if width == 1024:
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{name}-1024x800.png"))  # a full-page shot costs ~15 s: the top only


def test_the_records_filter_narrows_the_table(browser, reports):
    path, doc, _ = reports["blocked"]
    page, _ = _open(browser, path, 1280)
    rows = page.locator("#records tbody tr")
    total = len(doc["records"])
    assert rows.count() == total and page.locator("#shown").inner_text() == str(total)
    page.select_option("#fo", "failed")
    failed = sum(1 for r in doc["records"] if r["outcome"] in ("Falsified", "Crashed", "Timeout"))
    assert page.locator("#records tbody tr:visible").count() == failed == int(page.locator("#shown").inner_text())
    page.select_option("#fo", "")
    page.fill("#q", "arithmetic-0")
    visible = page.locator("#records tbody tr:visible")
    assert visible.count() == 1 and "41" in visible.inner_text()
    page.locator("#records").scroll_into_view_if_needed()
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "blocked-filtered.png"))
    page.fill("#q", "")
    page.select_option("#fg", "G3")
    assert page.locator("#records tbody tr:visible").count() == sum(1 for r in doc["records"] if r["gateway"] == "G3")


def test_certified_report_says_so_at_the_top_and_prints_without_controls(browser, reports):
    path, _, s = reports["certified"]
    page, external = _open(browser, path, 1280)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "certified-1280x800.png"))
    text = page.locator("#verdict").inner_text()
    assert "CERTIFIED" in text and "MQS 1000/1000, A+" in text and "Every gateway" in text
    assert page.locator("#verdict").bounding_box()["y"] < 100
    assert "100.0" not in text  # one MQS scale for people
    page.emulate_media(media="print")
    assert not page.locator(".filters").is_visible() and not page.locator("nav").is_visible()
    assert external == []
