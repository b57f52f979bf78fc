"""Weights registry: file:// fetches, SHA-256 checks, the cache folder (no network)."""

from __future__ import annotations

import hashlib

import pytest

from repair import registry
from repair.registry import REGISTRY, HashMismatchError, cache_folder, fetch, sha256_file


@pytest.fixture
def source(tmp_path):
    path = tmp_path / "src" / "weights.bin"
    path.parent.mkdir()
    path.write_bytes(b"some weights" * 1000)
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


def test_fetch_file_url_verifies_and_caches(tmp_path, source):
    path, digest = source
    cache = tmp_path / "cache"
    got = fetch(path.as_uri(), sha256=digest, cache_dir=cache, progress=False)
    assert got == cache / "weights.bin"
    assert got.read_bytes() == path.read_bytes()
    assert sha256_file(got) == digest
    path.write_bytes(b"changed upstream")  # the cached copy is used, not re-fetched
    assert fetch(path.as_uri(), sha256=digest, cache_dir=cache, progress=False) == got
    assert [p.name for p in cache.iterdir()] == ["weights.bin"]  # no temporary files left


def test_bad_hash_rejected_and_nothing_kept(tmp_path, source):
    path, digest = source
    cache = tmp_path / "cache"
    with pytest.raises(HashMismatchError, match="expected 0{64}"):
        fetch(path.as_uri(), sha256="0" * 64, cache_dir=cache, progress=False)
    assert not any(cache.iterdir())


def test_corrupt_cached_file_gives_clear_error(tmp_path, source):
    path, digest = source
    cache = tmp_path / "cache"
    fetch(path.as_uri(), sha256=digest, cache_dir=cache, progress=False)
    (cache / "weights.bin").write_bytes(b"truncated")
    with pytest.raises(HashMismatchError, match="delete it and fetch again"):
        fetch(path.as_uri(), sha256=digest, cache_dir=cache, progress=False)


def test_no_hash_records_first_download(tmp_path, source, capsys):
    path, digest = source
    got = fetch(path.as_uri(), cache_dir=tmp_path / "c", filename="renamed.bin")
    assert got.name == "renamed.bin"
    assert digest in capsys.readouterr().out


def test_registered_name_uses_registry(tmp_path, source, monkeypatch):
    path, digest = source
    monkeypatch.setitem(REGISTRY, "test-weights",
                        registry.Entry(path.as_uri(), digest, "test.bin", "a test file"))
    monkeypatch.setenv("REPAIR_CACHE", str(tmp_path / "env-cache"))
    got = fetch("test-weights", progress=False)
    assert got == tmp_path / "env-cache" / "test.bin"
    with pytest.raises(HashMismatchError):  # an explicit hash overrides the registry's
        fetch("test-weights", sha256="1" * 64, progress=False)


def test_unknown_name_and_missing_file(tmp_path):
    with pytest.raises(ValueError, match="neither a known weights name"):
        fetch("no-such-weights", cache_dir=tmp_path)
    with pytest.raises(FileNotFoundError):
        fetch((tmp_path / "missing.bin").as_uri(), cache_dir=tmp_path / "c", progress=False)
    assert not any((tmp_path / "c").iterdir())


def test_cache_folder(monkeypatch, tmp_path):
    monkeypatch.delenv("REPAIR_CACHE", raising=False)
    assert cache_folder().parts[-2:] == (".cache", "repair")
    monkeypatch.setenv("REPAIR_CACHE", str(tmp_path))
    assert cache_folder() == tmp_path
    assert cache_folder(tmp_path / "x") == tmp_path / "x"


def test_registry_entries_are_well_formed():
    assert {"ffhq-res256", "ffhq-res1024"} <= set(REGISTRY)
    for entry in REGISTRY.values():
        assert entry.url.startswith("https://") and entry.filename and entry.description
        assert entry.sha256 is None or len(entry.sha256) == 64
