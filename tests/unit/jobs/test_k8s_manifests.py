"""infra/k8s manifests validate against their schemas (trimmed Kubernetes and KEDA schemas)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

K8S = Path(__file__).resolve().parents[3] / "infra" / "k8s"
SCHEMAS = {"Deployment": "deployment.schema.json", "ScaledObject": "scaledobject.schema.json"}
COMPONENTS = ("api", "relay", "worker", "recorder", "projector", "dispatcher")


def problems(value: Any, schema: dict[str, Any], root: dict[str, Any], at: str = "") -> list[str]:
    """A JSON Schema subset: $ref, type, enum, required, properties, additionalProperties,
    items, minItems, minimum, maximum, pattern."""
    if "$ref" in schema:
        schema = root["definitions"][schema["$ref"].rsplit("/", 1)[-1]]
    kinds = {"object": dict, "array": list, "string": str, "integer": int}
    if "type" in schema and not isinstance(value, kinds[schema["type"]]):
        return [f"{at or '/'}: expected {schema['type']}, got {type(value).__name__}"]
    if "enum" in schema and value not in schema["enum"]:
        return [f"{at}: {value!r} not in {schema['enum']}"]
    found = []
    if isinstance(value, str) and "pattern" in schema and not re.search(schema["pattern"], value):
        found.append(f"{at}: {value!r} does not match {schema['pattern']}")
    if isinstance(value, int) and value < schema.get("minimum", value):
        found.append(f"{at}: {value} < {schema['minimum']}")
    if isinstance(value, int) and value > schema.get("maximum", value):
        found.append(f"{at}: {value} > {schema['maximum']}")
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            found.append(f"{at}: fewer than {schema['minItems']} items")
        for i, item in enumerate(value):
            found += problems(item, schema.get("items", {}), root, f"{at}/{i}")
    if isinstance(value, dict):
        found += [f"{at}/{k}: required" for k in schema.get("required", []) if k not in value]
        for key, item in value.items():
            sub = schema.get("properties", {}).get(key)
            extra = schema.get("additionalProperties", True)
            if sub is None and extra is False:
                found.append(f"{at}/{key}: not allowed")
            elif sub is not None or isinstance(extra, dict):
                found += problems(item, sub if sub is not None else extra, root, f"{at}/{key}")
    return found


def documents() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted(K8S.glob("*.yaml")):
        found += [(path.name, d) for d in yaml.safe_load_all(path.read_text()) if d]
    return found


@pytest.mark.parametrize(("name", "document"),
                         [d for d in documents() if d[1].get("kind") in SCHEMAS],
                         ids=lambda v: v if isinstance(v, str) else "")
def test_manifest_matches_its_schema(name: str, document: dict[str, Any]) -> None:
    schema = json.loads((K8S / "schemas" / SCHEMAS[document["kind"]]).read_text())
    assert problems(document, schema, schema) == []


def test_every_process_has_a_deployment_and_workers_scale_on_the_job_queue() -> None:
    kinds = {(d["kind"], d["metadata"]["name"]) for _, d in documents()}
    assert {("Deployment", f"cartolog-{c}") for c in COMPONENTS} <= kinds
    [scaler] = [d for _, d in documents() if d["kind"] == "ScaledObject"]
    assert scaler["spec"]["scaleTargetRef"]["name"] == "cartolog-worker"
    [trigger] = scaler["spec"]["triggers"]
    assert trigger["type"] == "postgresql"
    query = " ".join(trigger["metadata"]["query"].split())
    assert "FROM simulation_job_outbox WHERE kind = 'job' AND consumed_at IS NULL" in query
    assert trigger["metadata"]["targetQueryValue"] == "1"


def test_the_checker_rejects_a_broken_manifest() -> None:
    schema = json.loads((K8S / "schemas" / SCHEMAS["Deployment"]).read_text())
    broken = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "Bad_Name"},
              "spec": {"replicas": -1, "template": {"spec": {"containers": [{"name": "x"}]}}}}
    found = problems(broken, schema, schema)
    assert any("selector: required" in p for p in found)
    assert any("image: required" in p for p in found)
    assert any("Bad_Name" in p for p in found) and any("-1 < 0" in p for p in found)
