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
