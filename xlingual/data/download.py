"""Fetching the public text files of the datasets, with size and checksum checks.

Images are not redistributable from a fixed address; the command prints where
to get them. Without a network the download fails at once with one line.
"""

from __future__ import annotations

import hashlib
import logging
import socket
import urllib.error
import urllib.request
from pathlib import Path

from xlingual.data.datasets import DatasetSpec, RemoteFile, get_dataset
from xlingual.errors import NetworkError
from xlingual.io import atomic_open, file_digest
from xlingual.workspace import DataDir

logger = logging.getLogger(__name__)

TIMEOUT_S = 10.0


def is_valid_copy(path: Path, remote: RemoteFile) -> bool:
    return path.is_file() and path.stat().st_size == remote.size and file_digest(path) == remote.sha256


def fetch_file(remote: RemoteFile, dest: Path, timeout: float = TIMEOUT_S) -> None:
    """Download ``remote`` to ``dest`` atomically and check its size and SHA-256."""
    try:
        with urllib.request.urlopen(remote.url, timeout=timeout) as response:
            data = response.read()
    except urllib.error.HTTPError as err:
        raise NetworkError(f"{remote.url}: HTTP {err.code} {err.reason}") from None
    except (urllib.error.URLError, socket.timeout, OSError) as err:
        reason = getattr(err, "reason", err)
        raise NetworkError(f"{remote.url}: cannot download ({reason}); no network? Copy the files into the data directory by hand") from None
    digest = hashlib.sha256(data).hexdigest()
    if len(data) != remote.size or digest != remote.sha256:
        raise NetworkError(
            f"{remote.url}: got {len(data)} bytes with sha256 {digest[:12]}…, expected {remote.size} bytes {remote.sha256[:12]}… "
            "(a different version of the dataset?)"
        )
    with atomic_open(dest, "wb") as handle:
        handle.write(data)


def download_dataset(name: str, data_dir: str | Path) -> tuple[DatasetSpec, list[Path]]:
    """Fetch every text file of dataset ``name`` into ``data_dir``; files already valid are kept."""
    spec = get_dataset(name)
    target = DataDir(data_dir).text_dir(spec.name)
    written = []
    for file_name, remote in spec.remote.items():
        dest = target / file_name
        if is_valid_copy(dest, remote):
            logger.info("%s: already present, checksum ok", dest)
        else:
            logger.info("downloading %s", remote.url)
            fetch_file(remote, dest)
        written.append(dest)
    DataDir(data_dir).images_dir(spec.name).mkdir(parents=True, exist_ok=True)
    return spec, written
