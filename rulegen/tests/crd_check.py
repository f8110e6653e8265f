#!/usr/bin/env python3
"""Validate Kubernetes objects against a CustomResourceDefinition's openAPIV3Schema, strictly.

usage: crd_check.py CRD.yaml OBJECT.yaml...

Each object must have the CRD's group/version and kind, and match the schema of that version
with every object schema closed (an unknown field is an error, as with kubectl's strict field
validation) unless it says x-kubernetes-preserve-unknown-fields. Prints one line per error;
exits 1 if there is any.
"""
import sys

import jsonschema
import yaml


def strict(schema):
    """The schema with unknown fields refused and Kubernetes' int-or-string as JSON Schema."""
    if isinstance(schema, dict):
        out = {k: strict(v) for k, v in schema.items()}
        if out.get("x-kubernetes-int-or-string"):
            out.pop("type", None)
            out.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
        if (
            "properties" in out
            and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")
        ):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [strict(v) for v in schema]
    return schema


def main():
    crd_path, objects = sys.argv[1], sys.argv[2:]
    with open(crd_path) as f:
        crd = yaml.safe_load(f)
    group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
    versions = {
        f"{group}/{v['name']}": strict(v["schema"]["openAPIV3Schema"])
        for v in crd["spec"]["versions"]
        if v.get("served", True)
    }
    errors = 0
    checked = 0
    for path in objects:
        with open(path) as f:
            docs = [d for d in yaml.safe_load_all(f) if d is not None]
        if not docs:
            print(f"{path}: no object")
            errors += 1
        for d in docs:
            checked += 1
            if d.get("kind") != kind:
                print(f"{path}: kind {d.get('kind')!r}, the CRD defines {kind!r}")
                errors += 1
                continue
            schema = versions.get(d.get("apiVersion"))
            if schema is None:
                print(f"{path}: apiVersion {d.get('apiVersion')!r} not served ({', '.join(versions)})")
                errors += 1
                continue
            v = jsonschema.Draft7Validator(schema)
            for e in sorted(v.iter_errors(d), key=lambda e: list(e.absolute_path)):
                where = ".".join(str(p) for p in e.absolute_path) or "(root)"
                print(f"{path}: {where}: {e.message}")
                errors += 1
    print(f"{checked} object(s) checked against {crd_path}: {errors} error(s)")
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
