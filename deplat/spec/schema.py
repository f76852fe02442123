"""The JSON Schema of the spec, for editors (yaml-language-server) and other tools."""

from __future__ import annotations

from typing import Any

from deplat.spec.model import Spec

SCHEMA_ID = "https://github.com/deplat/deplat/schema/v1.json"


def json_schema() -> dict[str, Any]:
    schema = Spec.model_json_schema(mode="validation")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "deplat.yaml (v1)",
        **{k: v for k, v in schema.items() if k != "title"},
    }
