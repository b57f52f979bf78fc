"""Weights by name wherever the package is installed (repair.named_weights, repair.weights_cache,
and repair.zoo above them): the repository's checkpoints/, the copy shipped in the package, else
the user cache filled over HTTP with the SHA-256 checked.

Downloads come from a local HTTP server in a thread, never from the network. "Installed" is
simulated by pointing named_weights' committed and packaged folders at temporary ones.
"""

from __future__ import annotations

import functools
import http.server
import json
import threading
from pathlib import Path

import pytest
import torch

from repair import named_weights, weights_cache, zoo
from repair.checkpoint import net_record, save_checkpoint
from repair.nets import UNetGenerator


def release(path: Path, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    net = UNetGenerator(ngf=4, depth=2).eval()
    return save_checkpoint(path, {"kind": "release", "generator": net_record(net),
                                  "recipe": {"name": "pix2pix"}, "metrics": {"val_psnr": 20.0}})


class Server:
    """A folder served over HTTP on 127.0.0.1 (a free port), counting the requests it answers."""

    def __init__(self, folder: Path):
        self.folder, self.requests = folder, []
        server = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest's output clean
                pass

            def do_GET(self):
                server.requests.append(self.path)
                super().do_GET()

        self.httpd = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(Handler, directory=str(folder)))
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/checkpoints/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def installed(tmp_path, monkeypatch):
    """zoo as in a wheel: a packaged folder with MANIFEST.json and one of its two files, no clone;
    the other file is served by a local 'repository' (``$REPAIR_WEIGHTS_URL``)."""
    site = tmp_path / "site"        # the repository's files, as the web serves them
    shipped = release(site / "checkpoints" / "shipped-book.pt", seed=0)
    remote = release(site / "checkpoints" / "remote-book.pt", seed=1)
    entries = {p.stem: {"file": p.name, "sha256": weights_cache.sha256_file(p), "url": None}
               for p in (shipped, remote)}
    (site / "checkpoints" / "MANIFEST.json").write_text(json.dumps({"weights": entries}))
    packaged = tmp_path / "package" / "weights"
    packaged.mkdir(parents=True)
    (packaged / "MANIFEST.json").write_bytes((site / "checkpoints" / "MANIFEST.json").read_bytes())
    (packaged / shipped.name).write_bytes(shipped.read_bytes())
    monkeypatch.setattr(named_weights, "COMMITTED", packaged)  # committed_folder() in a wheel
    monkeypatch.setattr(named_weights, "PACKAGED", packaged)
    monkeypatch.setenv("REPAIR_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv(zoo.ENV_FALLBACK, raising=False)
    with Server(site) as server:
        monkeypatch.setenv("REPAIR_WEIGHTS_URL", server.url)
        yield server


def test_shipped_weights_load_without_a_download(installed, tmp_path):
    path = named_weights.weights_path("shipped-book")
    assert path == named_weights.PACKAGED / "shipped-book.pt"
    assert named_weights.pretrained("shipped-book").arch == "unet"
    assert installed.requests == [] and not (tmp_path / "cache").exists()


def test_other_weights_download_once_checked_and_atomic(installed, tmp_path):
    cache = tmp_path / "cache"
    assert set(zoo.available_models()) == {"shipped-book", "remote-book"}  # nothing fetched yet
    assert zoo.available_models()["remote-book"] == cache / "remote-book.pt"
    assert installed.requests == []
    path = named_weights.weights_path("remote-book", progress=False)
    assert path == cache / "remote-book.pt"
    listed = named_weights.manifest(named_weights.COMMITTED)
    assert weights_cache.sha256_file(path) == listed["remote-book"]["sha256"]
    assert installed.requests == ["/checkpoints/remote-book.pt"]
    assert [p.name for p in cache.iterdir()] == ["remote-book.pt"]   # no temporary file left
    nets = zoo.load_models(["remote-book", "shipped-book"])             # from the cache: no request
    assert {name: net.arch for name, net in nets.items()} == \
        {"remote-book": "unet", "shipped-book": "unet"}
    assert len(installed.requests) == 1


def test_restore_resolves_a_downloadable_model_by_name(installed):
    from repair.restore import resolve_restorer

    restorer = resolve_restorer("remote-book")
    x = torch.zeros(1, 1, 20, 24)
    assert restorer(x).shape == x.shape
    assert installed.requests == ["/checkpoints/remote-book.pt"]


def test_a_corrupt_download_is_refused_and_nothing_kept(installed, tmp_path):
    served = installed.folder / "checkpoints" / "remote-book.pt"
    served.write_bytes(served.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(weights_cache.HashMismatchError, match="downloaded file has SHA-256"):
        named_weights.weights_path("remote-book", progress=False)
    assert not any((tmp_path / "cache").iterdir())


def test_offline_error_says_what_to_fetch_and_where(installed, tmp_path, monkeypatch):
    installed.__exit__()                       # the server goes away: "offline"
    with pytest.raises(weights_cache.WeightsUnavailableError) as err:
        named_weights.weights_path("remote-book", progress=False)
    message = str(err.value)
    assert installed.url + "remote-book.pt" in message          # what to fetch
    assert str(tmp_path / "cache" / "remote-book.pt") in message  # where to put it
    assert "REPAIR_CACHE" in message and "SHA-256" in message
    assert isinstance(err.value, FileNotFoundError)
    assert not any((tmp_path / "cache").iterdir())
    # fetched by hand and put where the message said: used, hash checked
    (tmp_path / "cache" / "remote-book.pt").write_bytes(
        (installed.folder / "checkpoints" / "remote-book.pt").read_bytes())
    assert named_weights.pretrained("remote-book").arch == "unet"


def test_missing_file_upstream_is_a_clear_error(installed):
    (installed.folder / "checkpoints" / "remote-book.pt").unlink()
    with pytest.raises(weights_cache.WeightsUnavailableError, match="HTTP 404"):
        named_weights.weights_path("remote-book", progress=False)


def test_unknown_name_lists_the_known_ones(installed):
    with pytest.raises(ValueError, match="unknown weights 'nope'.*shipped-book, remote-book"):
        named_weights.weights_path("nope")


def test_cache_folder_defaults_to_the_platform_cache(monkeypatch, tmp_path):
    from platformdirs import user_cache_dir

    monkeypatch.delenv("REPAIR_CACHE", raising=False)
    assert weights_cache.cache_folder() == Path(user_cache_dir("repair", appauthor=False))
    monkeypatch.setenv("REPAIR_CACHE", str(tmp_path))
    assert weights_cache.cache_folder() == tmp_path


def test_download_address_is_the_repository_unless_a_mirror_is_set(monkeypatch):
    monkeypatch.delenv("REPAIR_WEIGHTS_URL", raising=False)
    assert named_weights.weights_url("pix2pix-book.pt") == \
        f"{named_weights.REPOSITORY}/raw/{named_weights.BRANCH}/checkpoints/pix2pix-book.pt"
    assert named_weights.weights_registry()["pix2pix-book"].url == \
        named_weights.weights_url("pix2pix-book.pt")
    monkeypatch.setenv("REPAIR_WEIGHTS_URL", "http://mirror.example/w")
    assert named_weights.weights_url("a b.pt") == "http://mirror.example/w/a%20b.pt"


def test_in_the_clone_committed_weights_come_from_checkpoints():
    root = Path(__file__).resolve().parents[1]
    assert named_weights.committed_folder() == named_weights.COMMITTED == root / "checkpoints"
    for name in ("restorer-book", "stylegan-faces64"):   # a restorer, and the other kind
        assert named_weights.weights_path(name).parent == root / "checkpoints"
    assert set(named_weights.weights_registry()) == \
        set(named_weights.manifest(named_weights.COMMITTED))
    assert "stylegan-faces64" not in zoo.available_models()        # not a restorer


def test_registry_module_is_an_alias_of_the_new_homes():
    from repair import registry

    assert registry.fetch is named_weights.fetch and registry.REGISTRY is named_weights.REGISTRY
    assert registry.Entry is named_weights.WeightsEntry
    assert registry.HashMismatchError is weights_cache.HashMismatchError
    assert registry.cache_folder is weights_cache.cache_folder


def test_the_chapters_names_stay_on_zoo():
    """Chapters 03 and 06 call zoo.pretrained and zoo.manifest; both live in named_weights."""
    assert zoo.pretrained is named_weights.pretrained and zoo.manifest is named_weights.manifest
