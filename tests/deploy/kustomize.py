"""A small reader of the kustomizations in strimzi/, so the overlays are validated without a kustomize binary.

It does what those files use and nothing more, and refuses anything else (so a new feature in a
kustomization fails here instead of being skipped): `resources` (files and directories), `namespace` (set on
every object but the cluster-scoped ones), `images` (newName/newTag) and `patches` with a `target` (kind, an
optional name regex, an optional `key=value` labelSelector) and JSON 6902 `add`/`replace` operations.
tests/deploy/test_strimzi.py checks it against `kubectl kustomize` where kubectl exists.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import yaml

KNOWN = {"apiVersion", "kind", "namespace", "resources", "images", "patches"}
CLUSTER_SCOPED = {"Namespace"}


def render(root: Path) -> list[dict[str, Any]]:
    """The objects `kubectl kustomize root` would print (in file order, not kustomize's sorted order)."""
    kustomization = yaml.safe_load((root / "kustomization.yaml").read_text())
    unknown = set(kustomization) - KNOWN
    if unknown:
        raise ValueError(f"{root}/kustomization.yaml uses {sorted(unknown)}, which this reader does not know")
    objects: list[dict[str, Any]] = []
    for entry in kustomization.get("resources", []):
        path = (root / entry).resolve()
        if path.is_dir():
            objects += render(path)
        else:
            objects += [d for d in yaml.safe_load_all(path.read_text()) if d]
    for patch in kustomization.get("patches", []):
        ops = yaml.safe_load(patch["patch"])
        matched = [o for o in objects if _targets(patch["target"], o)]
        if not matched:
            raise ValueError(f"{root}: a patch matches nothing: {patch['target']}")
        for obj in matched:
            for op in ops:
                _apply(obj, op)
    for image in kustomization.get("images", []):
        for obj in objects:
            for container in _containers(obj):
                name, _, tag = container["image"].partition(":")
                if name == image["name"]:
                    container["image"] = f"{image.get('newName', name)}:{image.get('newTag', tag)}"
    if "namespace" in kustomization:
        for obj in objects:
            if obj["kind"] not in CLUSTER_SCOPED:
                obj["metadata"]["namespace"] = kustomization["namespace"]
    return objects


def _targets(target: dict[str, str], obj: dict[str, Any]) -> bool:
    unknown = set(target) - {"kind", "name", "labelSelector"}
    if unknown:
        raise ValueError(f"patch target fields {sorted(unknown)} are not supported here")
    if obj["kind"] != target["kind"]:
        return False
    if "name" in target and not re.fullmatch(target["name"], obj["metadata"]["name"]):
        return False
    if "labelSelector" in target:
        key, value = target["labelSelector"].split("=")
        return obj["metadata"].get("labels", {}).get(key) == value
    return True


def _apply(obj: dict[str, Any], op: dict[str, Any]) -> None:
    if op["op"] not in ("add", "replace"):
        raise ValueError(f"JSON patch op {op['op']!r} is not supported here")
    *parents, last = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].lstrip("/").split("/")]
    node: Any = obj
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if isinstance(node, list):
        node[int(last)] = copy.deepcopy(op["value"])
        return
    if op["op"] == "replace" and last not in node:
        raise ValueError(f"replace of {op['path']}, which {obj['kind']}/{obj['metadata']['name']} does not have")
    node[last] = copy.deepcopy(op["value"])


def _containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    return obj.get("spec", {}).get("template", {}).get("spec", {}).get("containers", []) \
        if obj["kind"] == "Deployment" else []
