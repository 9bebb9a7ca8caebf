"""Atomic, verified on-disk storage of results (nested dicts of arrays and scalars).

Each entry is two files: ``<key>.npz`` (the arrays) and ``<key>.json`` (a manifest
with the npz's sha256 and any metadata).  Both are written to a temporary file
in the same directory, flushed, fsync'ed and moved into place with
``os.replace``, manifest last.  An entry counts only if its manifest exists and
the npz's hash matches it, so a process killed at any instant (even ``kill -9``)
leaves either a complete entry or one that is detected as partial and
recomputed, never a silently corrupt one.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from pathlib import Path

import numpy as np

_SEP = "/"


def config_key(*parts) -> str:
    """A stable short hash of JSON-serialisable ``parts`` (configs, names, versions)."""
    blob = json.dumps(parts, sort_keys=True, default=_json_default, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def _json_default(x):
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, (np.generic,)):
        return x.item()
    if isinstance(x, tuple):
        return list(x)
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")


def _flatten(tree, prefix=""):
    out = {}
    for k, v in tree.items():
        if _SEP in str(k):
            raise ValueError(f"result keys must not contain {_SEP!r}: {k!r}")
        name = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, name + _SEP))
        else:
            out[name] = np.asarray(v)
    return out


def _unflatten(flat):
    tree = {}
    for name, v in flat.items():
        node = tree
        *path, leaf = name.split(_SEP)
        for p in path:
            node = node.setdefault(p, {})
        node[leaf] = v[()] if v.ndim == 0 else v
    return tree


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save(directory, key: str, result: dict, meta: dict | None = None) -> Path:
    """Store ``result`` (nested dict of arrays/scalars) under ``key``; returns the npz path."""
    directory = Path(directory)
    buf = io.BytesIO()
    np.savez(buf, **_flatten(result))
    data = buf.getvalue()
    npz = directory / f"{key}.npz"
    _atomic_write(npz, data)
    manifest = {"sha256": hashlib.sha256(data).hexdigest(), "meta": meta or {}}
    _atomic_write(directory / f"{key}.json", json.dumps(manifest, default=_json_default, indent=1).encode())
    return npz


def load(directory, key: str):
    """The stored result, or ``None`` if absent, partial or corrupted (a bad entry is removed)."""
    directory = Path(directory)
    npz, js = directory / f"{key}.npz", directory / f"{key}.json"
    if not npz.exists() or not js.exists():
        return None
    try:
        manifest = json.loads(js.read_text())
        data = npz.read_bytes()
        if hashlib.sha256(data).hexdigest() != manifest["sha256"]:
            raise ValueError("hash mismatch")
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            return _unflatten({k: z[k] for k in z.files})
    except Exception:
        for p in (npz, js):
            try:
                p.unlink()
            except FileNotFoundError:
                pass
        return None


def exists(directory, key: str) -> bool:
    directory = Path(directory)
    return (directory / f"{key}.npz").exists() and (directory / f"{key}.json").exists()


def read_meta(directory, key: str) -> dict:
    js = Path(directory) / f"{key}.json"
    try:
        return json.loads(js.read_text()).get("meta", {})
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
