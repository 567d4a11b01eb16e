"""A small, strict stand-in for `kustomize build`, for the kustomizations under manifests/.

kustomize itself is not installable here, so the tests render each kustomization with this
resolver. It implements only what the manifests use, as kustomize does it, and refuses
anything else instead of ignoring it:
- `resources`: YAML files (every document) and directories holding a kustomization, in order;
  two resources with the same apiVersion/kind/namespace/name are an error, as in kustomize;
- `patches`, from a file (`path`) or inline (`patch`), with an optional `target` (`group`,
  `version`, `kind`, `name`, `namespace`); a patch without `target` applies to the resource
  with its own kind, name and namespace:
  - a YAML list is a JSON 6902 patch (`add`, `remove`, `replace`; `remove`/`replace` of a
    missing path is an error),
  - a mapping is a strategic-merge patch: `$patch: delete` removes the resource, otherwise
    mappings merge key by key (null deletes a key) and any other value replaces
    (kustomize's JSON merge patch, which is what it applies to custom resources);
  - a patch that matches no resource is an error (a typo must not pass silently).
Any other kustomization key (`namespace`, `images`, generators, `components`, …) makes
`render` fail.
"""

import copy
from pathlib import Path

import yaml

SUPPORTED_KEYS = {"apiVersion", "kind", "resources", "patches"}


class KustomizeError(Exception):
    pass


def resource_id(doc):
    meta = doc.get("metadata") or {}
    return (doc.get("apiVersion"), doc.get("kind"), meta.get("namespace"), meta.get("name"))


def load_documents(path: Path):
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def render(directory: Path, files_used=None):
    """The documents `kustomize build directory` writes. `files_used` (a set) collects every
    file the kustomization read."""
    kustomization_file = directory / "kustomization.yaml"
    if not kustomization_file.exists():
        raise KustomizeError(f"{directory}: no kustomization.yaml")
    if files_used is not None:
        files_used.add(kustomization_file.resolve())
    kustomization = yaml.safe_load(kustomization_file.read_text()) or {}
    unsupported = set(kustomization) - SUPPORTED_KEYS
    if unsupported:
        raise KustomizeError(f"{kustomization_file}: keys this resolver does not implement: {sorted(unsupported)}")

    documents = []
    for entry in kustomization.get("resources", []):
        path = (directory / entry).resolve()
        if path.is_dir():
            loaded = render(path, files_used)
        elif path.is_file():
            loaded = load_documents(path)
            if files_used is not None:
                files_used.add(path)
        else:
            raise KustomizeError(f"{kustomization_file}: resource {entry!r} does not exist")
        for doc in loaded:
            if any(resource_id(doc) == resource_id(d) for d in documents):
                raise KustomizeError(f"{kustomization_file}: resource {resource_id(doc)} is added twice")
            documents.append(doc)
    documents = copy.deepcopy(documents)

    for index, entry in enumerate(kustomization.get("patches", [])):
        where = f"{kustomization_file}: patches[{index}]"
        if "path" in entry:
            patch_file = (directory / entry["path"]).resolve()
            if files_used is not None:
                files_used.add(patch_file)
            patch = yaml.safe_load(patch_file.read_text())
        elif "patch" in entry:
            patch = yaml.safe_load(entry["patch"])
        else:
            raise KustomizeError(f"{where}: neither `path` nor `patch`")
        target = entry.get("target")
        if isinstance(patch, list):
            if target is None:
                raise KustomizeError(f"{where}: a JSON 6902 patch needs a `target`")
            matched = [d for d in documents if matches(d, target)]
            if not matched:
                raise KustomizeError(f"{where}: target {target} matches no resource")
            for doc in matched:
                for op in patch:
                    apply_operation(doc, op, where)
        elif isinstance(patch, dict):
            if target is None:
                meta = patch.get("metadata") or {}
                target = {"kind": patch.get("kind"), "name": meta.get("name")}
                if "namespace" in meta:
                    target["namespace"] = meta["namespace"]
            matched = [d for d in documents if matches(d, target)]
            if not matched:
                raise KustomizeError(f"{where}: target {target} matches no resource")
            if patch.get("$patch") == "delete":
                documents = [d for d in documents if not any(d is m for m in matched)]
            else:
                for doc in matched:
                    merge(doc, {k: v for k, v in patch.items() if k not in ("apiVersion", "kind")})
        else:
            raise KustomizeError(f"{where}: a patch is a list (JSON 6902) or a mapping (strategic merge)")
    return documents


def matches(doc, target):
    group, _, version = (doc.get("apiVersion") or "").rpartition("/")
    meta = doc.get("metadata") or {}
    checks = {
        "group": group,
        "version": version,
        "kind": doc.get("kind"),
        "name": meta.get("name"),
        "namespace": meta.get("namespace"),
    }
    unknown = set(target) - set(checks)
    if unknown:
        raise KustomizeError(f"target keys this resolver does not implement: {sorted(unknown)}")
    return all(checks[key] == value for key, value in target.items())


def merge(into, patch):
    for key, value in patch.items():
        if value is None:
            into.pop(key, None)
        elif isinstance(value, dict) and isinstance(into.get(key), dict):
            merge(into[key], value)
        else:
            into[key] = copy.deepcopy(value)


def pointer(path, where):
    if not path.startswith("/"):
        raise KustomizeError(f"{where}: path {path!r} is not a JSON pointer")
    return [part.replace("~1", "/").replace("~0", "~") for part in path[1:].split("/")]


def apply_operation(doc, op, where):
    kind = op.get("op")
    parts = pointer(op.get("path", ""), where)
    parent = doc
    for part in parts[:-1]:
        try:
            parent = parent[int(part)] if isinstance(parent, list) else parent[part]
        except (KeyError, IndexError, ValueError):
            raise KustomizeError(f"{where}: {op['path']}: no {part!r} in {resource_id(doc)}") from None
    last = parts[-1]
    if kind == "add":
        if isinstance(parent, list):
            parent.insert(len(parent) if last == "-" else int(last), copy.deepcopy(op["value"]))
        else:
            parent[last] = copy.deepcopy(op["value"])
    elif kind in ("remove", "replace"):
        exists = (int(last) < len(parent)) if isinstance(parent, list) else last in parent
        if not exists:
            raise KustomizeError(f"{where}: {kind} {op['path']}: no such field in {resource_id(doc)}")
        if kind == "remove":
            del parent[int(last) if isinstance(parent, list) else last]
        else:
            parent[int(last) if isinstance(parent, list) else last] = copy.deepcopy(op["value"])
    else:
        raise KustomizeError(f"{where}: operation {kind!r} is not implemented by this resolver")
