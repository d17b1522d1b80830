#!/usr/bin/env python3
"""Offline schema validation of Kubernetes manifests (multi-document YAML files, or - for stdin).

* Kinds with a CustomResourceDefinition in --crds (CloudNativePG Cluster/ScheduledBackup/Backup,
  prometheus-operator ServiceMonitor, Flux Kustomization/HelmRelease): validated against the CRD's
  openAPIV3Schema, made strict the way `kubectl apply --validate=strict` is (an unknown field is an
  error, except under x-kubernetes-preserve-unknown-fields), and their metadata against
  Kubernetes' ObjectMeta. CEL rules (x-kubernetes-validations) are not evaluated.
* Every other kind: kubernetes-validate (PyPI) in strict mode for Kubernetes --kubernetes-version.
* A kind with neither is an error: nothing passes unchecked.

    pip install kubernetes-validate==1.37.0
    kubectl kustomize docker/k8s/baremetal | python3 docker/k8s/tools/validate.py -
    python3 docker/k8s/tools/validate.py docker/k8s/flux/*.yaml

Prints one line per document, `OK kind/name (schema)` or `ERROR kind/name: path: message`;
exits 1 if any document failed.
"""

import argparse
import copy
import os
import sys

import jsonschema
import kubernetes_validate
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when PyYAML has it: much faster


def strict(schema):
    """A copy of a CRD's structural schema in which objects reject unknown fields."""
    if isinstance(schema, list):
        return [strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {}
    for key, value in schema.items():
        if key in ("properties", "patternProperties", "definitions", "$defs"):
            out[key] = {name: strict(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "not", "allOf", "anyOf", "oneOf"):
            out[key] = strict(value)
        else:
            out[key] = value
    if out.get("x-kubernetes-int-or-string") and "anyOf" not in out:
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if out.get("nullable") and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    if (
        out.get("type") == "object"
        and "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


def load_crds(directory):
    """{(apiVersion, kind): strict schema} for every served version of every CRD in directory."""
    schemas = {}
    for name in sorted(os.listdir(directory)):
        if not name.endswith((".yaml", ".yml")):
            continue
        with open(os.path.join(directory, name)) as f:
            for crd in yaml.load_all(f, Loader=LOADER):
                if not crd or crd.get("kind") != "CustomResourceDefinition":
                    continue
                group = crd["spec"]["group"]
                kind = crd["spec"]["names"]["kind"]
                for version in crd["spec"]["versions"]:
                    if not version.get("served", True):
                        continue
                    schema = strict(copy.deepcopy(version["schema"]["openAPIV3Schema"]))
                    schemas[(f"{group}/{version['name']}", kind)] = schema
    return schemas


def path_of(error):
    return ".".join(str(p) for p in error.absolute_path) or "(document)"


def validate(doc, crds, k8s_version):
    """Returns (schema description, [error lines])."""
    key = (doc.get("apiVersion"), doc.get("kind"))
    if key in crds:
        validator = jsonschema.Draft202012Validator(crds[key])
        errors = [
            f"{path_of(e)}: {e.message}"
            for e in sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
        ]
        # metadata is `type: object` in CRDs: check it as the API server would, as ObjectMeta.
        probe = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": doc.get("metadata")}
        try:
            kubernetes_validate.validate(probe, k8s_version, strict=True)
        except kubernetes_validate.ValidationError as e:
            errors.append(f"{path_of(e)}: {e.message}")
        return "CRD", errors
    try:
        version = kubernetes_validate.validate(doc, k8s_version, strict=True)
        return f"Kubernetes {version}", []
    except kubernetes_validate.ValidationError as e:
        return f"Kubernetes {e.version}", [f"{path_of(e)}: {e.message}"]
    except kubernetes_validate.SchemaNotFoundError:
        return "none", [f"no schema for {key[1]} {key[0]} (neither a CRD in --crds nor a Kubernetes kind)"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", help="YAML files, - for stdin")
    parser.add_argument("--crds", default=os.path.join(HERE, "..", "crds"))
    parser.add_argument("-k", "--kubernetes-version", default="1.33.0")
    args = parser.parse_args()

    crds = load_crds(args.crds)
    failed = 0
    count = 0
    for filename in args.files:
        text = sys.stdin.read() if filename == "-" else open(filename).read()
        for doc in yaml.load_all(text, Loader=LOADER):
            if not doc:
                continue
            count += 1
            name = f"{doc.get('kind')}/{(doc.get('metadata') or {}).get('name')}"
            schema, errors = validate(doc, crds, args.kubernetes_version)
            if errors:
                failed += 1
                for error in errors:
                    print(f"ERROR {filename} {name}: {error}")
            else:
                print(f"OK {filename} {name} ({schema})")
    print(f"{count - failed} valid, {failed} invalid")
    return 1 if failed or count == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
