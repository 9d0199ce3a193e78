"""YAML read as strictly as ``modelgate.contract.loads_strict`` reads JSON (recipes, playbooks).

PyYAML's ``safe_load`` keeps the last of two equal keys without a word, so a playbook or recipes file
that names ``tier`` twice would be judged on whichever came last. Here a duplicate key is an error,
so is an integer too large for a float (``samples`` of 400 digits),
and so are nesting deep enough to exhaust the parser's recursion and an integer Python refuses to
read: all raised as ``yaml.YAMLError``, which every reader already turns into an exit-2 verdict.
"""
from __future__ import annotations

import sys
from typing import Any

import yaml

# the JSON reader's rule (modelgate.contract.loads_strict): an integer beyond the float range is refused
_MAX_FLOAT_INT = int(sys.float_info.max)


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key written twice in one mapping."""


def _mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: set = set()
    for key_node, _value in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue  # ``<<: *base`` may be overridden by the keys written next to it
        key = loader.construct_object(key_node, deep=True)
        try:
            duplicate = key in seen
        except TypeError:  # an unhashable key: construct_mapping reports it
            break
        if duplicate:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


def _int(loader: _StrictLoader, node: yaml.ScalarNode) -> int:
    value = loader.construct_yaml_int(node)
    if abs(value) > _MAX_FLOAT_INT:
        raise yaml.constructor.ConstructorError(None, None, "an integer that does not fit a 64-bit float",
                                                node.start_mark)
    return value


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)
_StrictLoader.add_constructor("tag:yaml.org,2002:int", _int)


def loads(text: str) -> Any:
    """Parse YAML with the safe loader, refusing duplicate keys. Raises ``yaml.YAMLError`` (a recursion
    that would overflow the parser is raised as one too)."""
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except RecursionError as exc:
        raise yaml.YAMLError("nested too deeply") from exc
    except ValueError as exc:  # an integer of more than 4300 digits
        raise yaml.YAMLError(str(exc)) from exc
