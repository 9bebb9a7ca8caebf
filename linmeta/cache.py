"""Atomic, verified on-disk storage of results (nested dicts of arrays and scalars).

Each entry is two files: ``<key>.npz`` (the arrays) and ``<key>.json`` (a manifest
with the npz's sha256 and any metadata).  Both are written to a temporary file
in the same directory, flushed, fsync'ed and moved into place with
``os.replace``, manifest last.  An entry counts only if its manifest exists and
the npz's hash matches it, so a process killed at any instant (even ``kill -9``)
leaves either a complete entry or one that is detected as partial and
recomputed, never a silently corrupt one.

Storage problems raise :class:`StorageError` (an ``OSError``) with a one-line message naming the
path: :class:`ReadOnlyError` when the folder cannot be written (a read-only file system, no
permission), plain :class:`StorageError` when it cannot be used at all (it is a regular file, it lies
below a file, the disk is full).  A damaged entry that cannot be removed (a read-only cache) is
reported with a :class:`CacheWarning` and treated as missing.
"""
from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np

_SEP = "/"
READ_ONLY_ERRNOS = frozenset({errno.EROFS, errno.EACCES, errno.EPERM})


class StorageError(OSError):
    """A folder or file of the cache (or of the figures) cannot be used; the message names the path."""

    def __init__(self, message: str, path=None):
        super().__init__(message)
        self.message, self.path = message, None if path is None else str(path)

    def __str__(self):
        return self.message


class ReadOnlyError(StorageError):
    """The folder exists (or could) but cannot be written: a read-only file system or no permission."""


class CacheWarning(UserWarning):
    """Something about the cache the user should know (it is read-only, an entry was damaged)."""


def storage_error(exc: OSError, path, action: str = "write") -> StorageError:
    """The :class:`StorageError` for an ``OSError`` met while doing ``action`` on ``path``: one line."""
    if isinstance(exc, StorageError):
        return exc
    path = Path(path)
    code = getattr(exc, "errno", None)
    if code == errno.EROFS:
        return ReadOnlyError(f"cannot {action} {path}: read-only file system", path)
    if code in (errno.EACCES, errno.EPERM):
        return ReadOnlyError(f"cannot {action} {path}: permission denied", path)
    if code == errno.ENOSPC or code == getattr(errno, "EDQUOT", None):
        return StorageError(f"cannot {action} {path}: no space left on the device", path)
    if code == errno.ENOTDIR:
        return StorageError(f"cannot {action} {path}: a folder on its path is a regular file", path)
    if code == errno.EEXIST or isinstance(exc, FileExistsError):
        return StorageError(f"cannot {action} {path}: it is a regular file, not a folder", path)
    return StorageError(f"cannot {action} {path}: {exc.strerror or exc}", path)


def ensure_dir(directory, what: str = "cache folder") -> Path:
    """Create ``directory`` (and its parents) if needed; a :class:`StorageError` naming it otherwise."""
    directory = Path(directory)
    if directory.is_dir():
        return directory
    if directory.exists():
        raise StorageError(f"the {what} {directory} is a regular file, not a folder", directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        err = storage_error(exc, directory, "create")
        raise type(err)(f"the {what} {directory} cannot be created: {err.message.split(': ', 1)[-1]}", directory) \
            from None
    return directory


def check_writable(directory, what: str = "cache folder") -> Path:
    """Make sure files can be written in ``directory`` (created if needed) before any work is done.

    Raises :class:`ReadOnlyError` if it cannot be written and :class:`StorageError` if it cannot be used.
    """
    directory = ensure_dir(directory, what)
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-probe-")
    except OSError as exc:
        err = storage_error(exc, directory, "write in")
        raise type(err)(f"the {what} {directory} cannot be written: {err.message.split(': ', 1)[-1]}",
                        directory) from None
    os.close(fd)
    os.unlink(tmp)
    return directory


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


def atomic_write(path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a unique temporary file in the same folder and ``os.replace``.

    Concurrent writers of the same path never collide (each has its own temporary file) and a reader
    sees the old or the new file, never a mix.  An ``OSError`` becomes a :class:`StorageError` naming
    the path.
    """
    path = Path(path)
    ensure_dir(path.parent, "folder")
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    except OSError as exc:
        raise storage_error(exc, path) from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise storage_error(exc, path) from None
        raise
    return path


_atomic_write = atomic_write


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
    try:
        if not npz.is_file() or not js.is_file():
            return None
    except OSError:
        return None
    try:
        manifest = json.loads(js.read_text())
        data = npz.read_bytes()
        if hashlib.sha256(data).hexdigest() != manifest["sha256"]:
            raise ValueError("hash mismatch")
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            return _unflatten({k: z[k] for k in z.files})
    except Exception as exc:
        if isinstance(exc, OSError) and exc.errno in READ_ONLY_ERRNOS:  # unreadable: leave it alone
            warnings.warn(f"cache entry {npz} cannot be read ({exc.strerror}); recomputing it", CacheWarning,
                          stacklevel=2)
            return None
        for p in (npz, js):
            try:
                p.unlink()
            except FileNotFoundError:
                pass
            except OSError as exc2:  # a read-only cache: the damaged entry stays, the result is recomputed
                warnings.warn(f"cache entry {npz} is damaged and cannot be removed ({exc2.strerror}); "
                              "recomputing it in memory", CacheWarning, stacklevel=2)
                break
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
