"""Fintera's Rails-style XML, read into (and written from) the JSON shapes of its API.

Fintera serves JSON or XML on the same URLs. Elements are dashed (`entity-id`), typed by a
`type` attribute (`integer`, `boolean`, `array`, …), and null as `nil="true"`. A top-level
array holds wrapped items like the JSON (`[{"sale_account": {...}}]`); nested arrays hold
plain objects. Decimals stay strings, as in the JSON. Parsing goes through defusedxml.
"""

from __future__ import annotations

from typing import Any
from xml.etree.ElementTree import Element, SubElement, tostring

from defusedxml import ElementTree as SafeTree


class XmlError(ValueError):
    """The XML is malformed or hostile (entities, DTDs)."""


def loads(data: bytes) -> Any:
    """Parse a Fintera XML body into the structure its JSON twin would have."""
    try:
        root = SafeTree.fromstring(data)
    except Exception as err:
        raise XmlError(f"unreadable XML ({type(err).__name__})") from err
    if root.get("type") == "array":
        return [{_key(child.tag): _value(child)} for child in root]
    return {_key(root.tag): _value(root)}


def _key(tag: str) -> str:
    return tag.replace("-", "_")


def _value(node: Element) -> Any:
    if node.get("nil") == "true":
        return None
    kind = node.get("type")
    if kind == "array":
        return [_value(child) for child in node]
    if len(node):
        return {_key(child.tag): _value(child) for child in node}
    text = (node.text or "").strip()
    if kind == "integer":
        return int(text)
    if kind == "boolean":
        return text == "true"
    return text


def dumps(payload: Any) -> bytes:
    """Write a JSON-shaped payload as Fintera XML (the simulator's XML answers)."""
    if isinstance(payload, list):
        root = Element("", {"type": "array"})
        for item in payload:
            ((name, body),) = item.items()
            root.tag = _tag(name) + "s"
            _fill(SubElement(root, _tag(name)), body)
    else:
        ((name, body),) = payload.items()
        root = Element(_tag(name))
        _fill(root, body)
    if not root.tag:
        root.tag = "objects"
    text: bytes = tostring(root, encoding="utf-8", xml_declaration=False)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + text


def _tag(key: str) -> str:
    return key.replace("_", "-")


def _fill(node: Element, value: Any) -> None:
    if value is None:
        node.set("nil", "true")
    elif isinstance(value, bool):
        node.set("type", "boolean")
        node.text = "true" if value else "false"
    elif isinstance(value, int):
        node.set("type", "integer")
        node.text = str(value)
    elif isinstance(value, list):
        node.set("type", "array")
        child_tag = node.tag.removesuffix("s")
        for item in value:
            _fill(SubElement(node, child_tag), item)
    elif isinstance(value, dict):
        for key, item in value.items():
            _fill(SubElement(node, _tag(key)), item)
    else:
        node.text = str(value)
