"""Tests for repair.loc against hand-made recordings of the loc.gov JSON API (no network)."""

import io
import json
import urllib.error
from pathlib import Path

import pytest
from PIL import Image

from repair import archive, loc, web

FIXTURES = Path(__file__).parent / "fixtures" / "loc"
PAGE1 = loc.collection_page_url(1, per_page=3)
A, B, C = "2004664601", "2004664602", "2004664603"
V_A = "https://tile.loc.gov/storage-services/service/pnp/ppmsca/50000/50001v.jpg"


@pytest.fixture
def client():
    return web.RecordedClient.from_dir(FIXTURES)


def test_every_route_points_at_an_existing_fixture():
    routes = json.loads((FIXTURES / "routes.json").read_text())
    assert all((FIXTURES / name).exists() for name in routes.values())
    assert PAGE1 in routes  # the address iter_items asks for first


def test_list_items_follows_pagination_and_skips_items_without_images(client):
    items = loc.list_items(per_page=3, client=client)
    assert [item.id for item in items] == [A, B, C]  # 2004664604 has no image_url
    assert len(client.calls) == 2
    first = items[0]
    assert first.title.startswith("[Unidentified woman")
    assert first.date == "1846"
    assert first.rights == "No known restrictions on publication."
    assert first.item_url == f"https://www.loc.gov/item/{A}/"
    assert all(ref.url.startswith("https://") and "#" not in ref.url for ref in first.images)


def test_limit_stops_before_fetching_the_next_page(client):
    items = loc.list_items(limit=2, per_page=3, client=client)
    assert [item.id for item in items] == [A, B]
    assert len(client.calls) == 1


def test_image_refs_read_sizes_from_fragments_and_dedupe():
    refs = loc.image_refs([
        "//tile.loc.gov/x/1_150px.jpg",
        "//tile.loc.gov/x/1_150px.jpg#h=150&w=120",
        "//tile.loc.gov/x/1v.jpg#h=1024&w=819",
    ])
    assert [(r.url, r.width, r.height, r.mimetype) for r in refs] == [
        ("https://tile.loc.gov/x/1_150px.jpg", 120, 150, "image/jpeg"),
        ("https://tile.loc.gov/x/1v.jpg", 819, 1024, "image/jpeg"),
    ]


def test_parse_item_reads_rights_and_all_resource_files():
    item = loc.parse_item(json.loads((FIXTURES / f"item_{A}.json").read_text()))
    assert item.id == A
    assert item.rights == "No known restrictions on publication."
    assert item.extra["reproduction_number"].startswith("LC-DIG-ppmsca-50001")
    types = {r.mimetype for r in item.images}
    assert types == {"image/jpeg", "image/gif", "image/jp2", "image/tiff"}
    assert max(r.long_side for r in item.images) == 4120


def test_parse_item_rejects_a_listing():
    with pytest.raises(web.LocError, match="not an item page"):
        loc.parse_item(json.loads((FIXTURES / "collection_page1.json").read_text()))


@pytest.mark.parametrize("kwargs, suffix", [
    ({}, "50001v.jpg"),                                     # largest JPEG up to 1024 px
    ({"max_size": 700}, "50001r.jpg"),
    ({"size": "medium"}, "50001r.jpg"),
    ({"size": "thumb"}, "50001_150px.jpg"),
    ({"max_size": 100}, "50001_150px.jpg"),                 # nothing fits: the smallest
    ({"max_size": None}, "50001v.jpg"),                     # TIFF/JP2 not allowed by default
    ({"size": "full", "mimetypes": ("image/jpeg", "image/tiff")}, "50001u.tif"),
])
def test_pick_image(kwargs, suffix):
    item = loc.parse_item(json.loads((FIXTURES / f"item_{A}.json").read_text()))
    assert loc.pick_image(item.images, **kwargs).url.endswith(suffix)


def test_pick_image_rejects_bad_requests():
    item = loc.parse_item(json.loads((FIXTURES / f"item_{A}.json").read_text()))
    with pytest.raises(ValueError, match="not one of"):
        loc.pick_image(item.images, size="huge")
    with pytest.raises(web.LocError, match="no image of type"):
        loc.pick_image(item.images, mimetypes=("image/png",))


def test_download_item_writes_image_and_sidecar_then_uses_the_cache(client, tmp_path):
    item = loc.get_item(A, client=client)
    path = archive.download_item(item, tmp_path, client=client)
    assert path == tmp_path / f"{A}_max1024.jpg"
    assert path.read_bytes() == (FIXTURES / "dag_a_v.jpg").read_bytes()
    meta = archive.read_metadata(path)
    assert meta["title"] == item.title and meta["date"] == "1846"
    assert meta["rights"] == "No known restrictions on publication."
    assert meta["item_url"] == f"https://www.loc.gov/item/{A}/"
    assert meta["image_url"] == V_A
    assert (meta["width"], meta["height"]) == (32, 40)  # read from the file
    assert meta["listed_size"] == [819, 1024]
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{A}_max1024.jpg", f"{A}_max1024.json"]
    calls = len(client.calls)
    assert archive.download_item(item, tmp_path, client=client) == path
    assert len(client.calls) == calls  # cached: no request


def test_a_non_image_answer_raises_and_leaves_no_file(tmp_path):
    page = json.loads((FIXTURES / "collection_page1.json").read_text())
    item = loc.parse_result(page["results"][0])
    client = web.RecordedClient({V_A: b"<html><body>Just a moment...</body></html>"})
    with pytest.raises(archive.LocImageError, match="readable image"):
        archive.download_item(item, tmp_path, client=client)
    assert list(tmp_path.iterdir()) == []


def test_download_daguerreotypes_end_to_end(client, tmp_path):
    paths = archive.download_daguerreotypes(tmp_path, limit=2, per_page=3, client=client,
                                        progress=False)
    assert [p.name for p in paths] == [f"{A}_max1024.jpg", f"{B}_max1024.jpg"]
    for path in paths:
        with Image.open(path) as img:
            img.load()
        assert archive.read_metadata(path)["rights"]
    # B's listing only offers 640 px; its item page offers the 1024 px file, which details=True used
    assert archive.read_metadata(paths[1])["image_url"].endswith("50002v.jpg")
    before = len(client.calls)
    again = archive.download_daguerreotypes(tmp_path, limit=2, per_page=3, client=client,
                                        progress=False)
    assert again == paths
    assert len(client.calls) == before + 1  # only the listing page; images and items cached


def test_download_daguerreotypes_from_listing_only(client, tmp_path):
    paths = archive.download_daguerreotypes(tmp_path, limit=3, per_page=3, details=False, client=client,
                                        progress=False)
    assert [p.name for p in paths] == [f"{A}_max1024.jpg", f"{B}_max1024.jpg", f"{C}_max1024.jpg"]
    assert archive.read_metadata(paths[1])["image_url"].endswith("50002r.jpg")  # listing's largest
    assert not any("/item/" in url for url in client.calls)


def test_download_daguerreotypes_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="limit"):
        archive.download_daguerreotypes(tmp_path, limit=0)
    with pytest.raises(ValueError, match="not one of"):
        archive.download_daguerreotypes(tmp_path, size="poster")


def test_default_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("REPAIR_CACHE", str(tmp_path))
    assert archive.default_cache_dir() == tmp_path / "loc"
    monkeypatch.delenv("REPAIR_CACHE")
    assert archive.default_cache_dir() == Path.home() / ".cache" / "repair" / "loc"


def test_recorded_client_reports_unknown_urls_as_404(client):
    with pytest.raises(web.LocHTTPError, match="404"):
        client.fetch_json("https://www.loc.gov/item/0000/?fo=json")


# --- the polite HTTP client, with a fake urlopen and a fake clock ---------------------------

class FakeNet:
    """urlopen stand-in: answers from a list of outcomes (bytes or an HTTP status to raise)."""

    def __init__(self, outcomes):
        self.outcomes, self.requests, self.now, self.sleeps = list(outcomes), [], 0.0, []

    def urlopen(self, request, timeout):
        self.requests.append((request, self.now))
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, int):
            raise urllib.error.HTTPError(request.full_url, outcome, "boom", {}, None)
        if isinstance(outcome, Exception):
            raise outcome
        return io.BytesIO(outcome)

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds

    def client(self, **kwargs):
        return web.HttpClient(opener=self.urlopen, sleep=self.sleep, clock=lambda: self.now,
                              **kwargs)


def test_http_client_retries_server_errors_with_backoff():
    net = FakeNet([503, 502, b'{"ok": true}'])
    client = net.client(delay=0.0, retries=3, backoff=1.5)
    assert client.fetch_json("https://www.loc.gov/x/?fo=json") == {"ok": True}
    assert net.sleeps == [1.5, 3.0]
    request = net.requests[0][0]
    assert request.get_header("User-agent") == web.USER_AGENT


def test_http_client_does_not_retry_a_404_and_explains():
    net = FakeNet([404, b"never"])
    with pytest.raises(web.LocHTTPError, match="404.*check the item id") as info:
        net.client(retries=3).fetch_bytes("https://www.loc.gov/item/nope/?fo=json")
    assert info.value.status == 404 and len(net.requests) == 1


def test_http_client_gives_up_after_the_retries():
    net = FakeNet([urllib.error.URLError("no route")] * 3)
    with pytest.raises(web.LocHTTPError, match="no route"):
        net.client(delay=0.0, retries=2, backoff=0.1).fetch_bytes("https://www.loc.gov/")
    assert len(net.requests) == 3


def test_http_client_waits_between_requests():
    net = FakeNet([b"{}", b"{}", b"{}"])
    client = net.client(delay=1.0)
    for _ in range(3):
        client.fetch_json("https://www.loc.gov/?fo=json")
    starts = [t for _, t in net.requests]
    assert starts == [0.0, 1.0, 2.0]


def test_http_client_explains_a_non_json_answer():
    net = FakeNet([b"<!DOCTYPE html><html>"])
    with pytest.raises(web.LocError, match="did not answer with JSON"):
        net.client().fetch_json("https://www.loc.gov/collections/daguerreotypes/")
