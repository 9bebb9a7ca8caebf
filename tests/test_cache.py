"""Atomic, verified result storage (linmeta.cache)."""
import numpy as np

from linmeta import cache


def test_roundtrip_nested(tmp_path):
    res = {"a": np.arange(3.0), "b": {"c": np.eye(2), "d": 1.5}, "e": np.int64(4)}
    cache.save(tmp_path, "k", res, {"x": 1})
    got = cache.load(tmp_path, "k")
    assert np.array_equal(got["a"], res["a"]) and np.array_equal(got["b"]["c"], np.eye(2))
    assert got["b"]["d"] == 1.5 and got["e"] == 4
    assert cache.read_meta(tmp_path, "k") == {"x": 1}


def test_missing_partial_and_corrupted_entries_are_not_used(tmp_path):
    assert cache.load(tmp_path, "nope") is None
    cache.save(tmp_path, "k", {"a": np.arange(100.0)})
    # a partial write: the npz is truncated (as a kill -9 mid-write would leave a temp file, never this;
    # but a disk error or a manual edit could)
    p = tmp_path / "k.npz"
    p.write_bytes(p.read_bytes()[:50])
    assert cache.load(tmp_path, "k") is None
    assert not p.exists()  # the bad entry was removed, so it will be recomputed
    # an npz without its manifest (killed between the two writes) is not used either
    cache.save(tmp_path, "m", {"a": 1.0})
    (tmp_path / "m.json").unlink()
    assert cache.load(tmp_path, "m") is None


def test_config_key_is_stable_and_sensitive():
    a = cache.config_key("x", {"b": 1, "a": (1, 2)}, "0.1")
    assert a == cache.config_key("x", {"a": [1, 2], "b": 1}, "0.1")
    assert a != cache.config_key("x", {"a": (1, 2), "b": 2}, "0.1")
    assert a != cache.config_key("x", {"b": 1, "a": (1, 2)}, "0.2")


def test_no_temp_files_left(tmp_path):
    cache.save(tmp_path, "k", {"a": 1.0})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k.json", "k.npz"]


def test_concurrent_writers_of_one_entry_never_collide(tmp_path):
    """Unique temporary files and atomic renames: many writers of the same key at once all succeed."""
    from concurrent.futures import ThreadPoolExecutor

    res = {"a": np.arange(1000.0)}
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: cache.save(tmp_path, "k", res, {"w": 1}), range(32)))
    assert np.array_equal(cache.load(tmp_path, "k")["a"], res["a"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k.json", "k.npz"]


def test_storage_errors_name_the_path(tmp_path, monkeypatch):
    import errno

    import pytest

    afile = tmp_path / "file"
    afile.write_text("x")
    with pytest.raises(cache.StorageError, match=f"the cache folder {afile} is a regular file, not a folder"):
        cache.check_writable(afile)
    with pytest.raises(cache.StorageError, match=f"{afile / 'sub'} cannot be created"):
        cache.save(afile / "sub", "k", {"a": 1.0})
    assert cache.load(afile / "sub", "k") is None  # reading below a file is just a miss

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(cache.os, "fsync", full)
    with pytest.raises(cache.StorageError, match=f"cannot write {tmp_path / 'c' / 'k.npz'}: no space left"):
        cache.save(tmp_path / "c", "k", {"a": 1.0})
    assert [p.name for p in (tmp_path / "c").iterdir()] == []  # no temporary file left behind


def test_read_only_folders_raise_read_only_error(tmp_path, monkeypatch):
    import errno
    import tempfile

    import pytest

    def refuse(*a, **kw):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(cache.ReadOnlyError, match="cannot be written: read-only file system"):
        cache.check_writable(tmp_path)
    with pytest.raises(cache.ReadOnlyError, match="read-only file system"):
        cache.save(tmp_path, "k", {"a": 1.0})


def test_a_damaged_entry_that_cannot_be_removed_is_a_warning_and_a_miss(tmp_path, monkeypatch):
    import errno
    from pathlib import Path

    import pytest

    cache.save(tmp_path, "k", {"a": np.arange(10.0)})
    (tmp_path / "k.npz").write_bytes(b"damaged")

    def refuse(self, *a, **kw):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(Path, "unlink", refuse)
    with pytest.warns(cache.CacheWarning, match="is damaged and cannot be removed"):
        assert cache.load(tmp_path, "k") is None
    assert (tmp_path / "k.npz").exists()
