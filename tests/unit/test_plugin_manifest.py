"""The pack installs as a Claude Code plugin: .claude-plugin/plugin.json and .claude-plugin/marketplace.json
hold only documented fields (Claude Code docs: plugins/manifest-reference and plugins/marketplace-reference;
Claude Code ignores unknown keys silently, so a typo would load as nothing) and agree with the package."""
import json
import re
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[2]
PLUGIN = json.loads((ROOT / ".claude-plugin" / "plugin.json").read_text())
MARKET = json.loads((ROOT / ".claude-plugin" / "marketplace.json").read_text())
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]

KEBAB = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
SEMVER = re.compile(r"^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$")
# plugin.json: `name` is required; the rest are the documented metadata and component-path fields
PLUGIN_FIELDS = {"name", "version", "description", "author", "homepage", "repository", "license", "keywords",
                 "commands", "agents", "skills", "hooks", "mcpServers", "outputStyles", "lspServers"}
PERSON_FIELDS = {"name", "email", "url"}
# marketplace.json: `name`, `owner` and `plugins` are required; each entry needs `name` and `source`
MARKET_FIELDS = {"$schema", "name", "owner", "plugins", "metadata", "description", "version"}
MARKET_METADATA = {"description", "version", "pluginRoot"}
ENTRY_FIELDS = PLUGIN_FIELDS | {"source", "category", "tags", "strict"}
RESERVED = {"claude-code-marketplace", "claude-code-plugins", "claude-plugins-official", "anthropic-marketplace",
            "anthropic-plugins", "agent-skills", "anthropic-agent-skills", "life-sciences"}


def test_plugin_manifest_has_a_kebab_name_and_only_documented_fields():
    assert KEBAB.match(PLUGIN["name"])
    assert set(PLUGIN) <= PLUGIN_FIELDS, set(PLUGIN) - PLUGIN_FIELDS
    assert set(PLUGIN["author"]) <= PERSON_FIELDS and PLUGIN["author"]["name"]
    assert all(isinstance(k, str) for k in PLUGIN["keywords"])


def test_plugin_manifest_agrees_with_the_package():
    assert PLUGIN["name"] == PROJECT["name"]
    assert SEMVER.match(PLUGIN["version"]) and PLUGIN["version"] == PROJECT["version"]
    assert PLUGIN["license"] == PROJECT["license"]


def test_the_plugin_skills_are_found_at_the_default_location():
    # no "skills" field: Claude Code loads skills/<name>/SKILL.md from the plugin root
    assert "skills" not in PLUGIN
    skills = sorted(p.parent.name for p in (ROOT / "skills").glob("*/SKILL.md"))
    assert skills == ["day0-release", "model-certification", "verify-conversion"]


def test_marketplace_has_its_required_fields_and_only_documented_ones():
    assert set(MARKET) <= MARKET_FIELDS, set(MARKET) - MARKET_FIELDS
    assert MARKET["name"] and MARKET["name"] not in RESERVED
    assert set(MARKET["owner"]) <= PERSON_FIELDS and MARKET["owner"]["name"]
    assert set(MARKET.get("metadata", {})) <= MARKET_METADATA
    assert isinstance(MARKET["plugins"], list) and MARKET["plugins"]


def test_every_marketplace_entry_points_at_a_plugin_of_the_same_name():
    for entry in MARKET["plugins"]:
        assert set(entry) <= ENTRY_FIELDS, set(entry) - ENTRY_FIELDS
        assert KEBAB.match(entry["name"])
        source = entry["source"]
        assert isinstance(source, str) and source.startswith("./")  # a relative source ("." is rejected)
        manifest = (ROOT / source / ".claude-plugin" / "plugin.json").resolve()
        assert manifest.is_file() and json.loads(manifest.read_text())["name"] == entry["name"]
        assert entry.get("version", PLUGIN["version"]) == PLUGIN["version"]
