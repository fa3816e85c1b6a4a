"""The one downloader (weights, data sets) and the one terminal progress reporter.

:func:`download_file` streams a URL into a temporary file next to its target,
checks an optional SHA-256 prefix and only then gives the file its final name,
so a partial or corrupt download never looks like a finished one. Offline it
fails within seconds (a quick TCP connect first) instead of hanging.

Progress is reported through a plain callback ``(done, total)`` so the same
download can drive a Streamlit progress bar in a page or a :class:`TextProgress`
bar on stderr in a command; training reports its steps with the same bar.
"""

from __future__ import annotations

import hashlib
import os
import socket
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Callable, TextIO

from segdemo import i18n

ProgressCallback = Callable[[int, int], None]  # (done, total or 0 when unknown)


class DownloadError(ConnectionError):
    """The URL could not be fetched (offline, interrupted) or the file is corrupt.

    ``key`` names the catalogue message and ``values`` fill it, so a page says why in
    the user's language; ``str()`` is the English text a command prints.
    """

    def __init__(self, key: str, **values: object) -> None:
        super().__init__(i18n.t(key, "en", **values))
        self.key = key
        self.values = values


class TextProgress:
    """A one-line progress bar on stderr: bytes (MB, MB/s) or steps (count, elapsed, eta).

    Callable as a :data:`ProgressCallback`; :meth:`update` also takes a short
    ``info`` text (e.g. the running loss).
    """

    def __init__(self, prefix: str = "", total: int = 0, unit: str = "bytes", stream: TextIO | None = None,
                 width: int = 30) -> None:
        self.prefix, self.total, self.unit, self.width = prefix, total, unit, width
        self.stream = stream or sys.stderr
        self.start = time.monotonic()

    def update(self, done: int, total: int | None = None, info: str = "") -> None:
        """Redraw the bar for ``done`` of ``total`` (the constructor's total when not given)."""
        total = total or self.total
        elapsed = max(time.monotonic() - self.start, 1e-6)
        frac = done / total if total else 0.0
        bar = f"[{'#' * int(self.width * frac):<{self.width}}] " if total else ""
        if self.unit == "bytes":
            amount = f"{done / 1e6:7.1f}/{total / 1e6:.1f} MB" if total else f"{done / 1e6:7.1f} MB"
            tail = f"{amount}  {done / 1e6 / elapsed:5.1f} MB/s"
        else:
            eta = elapsed / max(frac, 1e-9) - elapsed
            tail = f"{done}/{total} {elapsed:5.0f}s eta {eta:4.0f}s"
        self.stream.write(f"\r{self.prefix + ' ' if self.prefix else ''}{bar}{tail} {info}".rstrip())
        self.stream.flush()

    __call__ = update

    def close(self) -> None:
        """End the line."""
        self.stream.write("\n")
        self.stream.flush()


def reachable(url: str, timeout: float = 3.0) -> bool:
    """A quick TCP connect to the URL's host, so an offline machine fails fast."""
    parsed = urllib.parse.urlparse(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


def download_file(url: str, target: Path, progress: ProgressCallback | None = None,
                  sha256_prefix: str | None = None, timeout: float = 30.0, connect_timeout: float = 3.0,
                  chunk: int = 1 << 20) -> Path:
    """Download ``url`` to ``target`` (atomically); raises :class:`DownloadError`.

    ``sha256_prefix``: the first hex digits the file's SHA-256 must start with
    (torchvision's file names carry them). Nothing is created before the host answers.
    """
    host = urllib.parse.urlparse(url).hostname
    if not reachable(url, connect_timeout):
        raise DownloadError("download.unreachable", host=host)
    target.parent.mkdir(parents=True, exist_ok=True)
    sha = hashlib.sha256()
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, suffix=".partial")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310
            total = int(response.headers.get("Content-Length") or 0)
            done = 0
            while block := response.read(chunk):
                out.write(block)
                sha.update(block)
                done += len(block)
                if progress:
                    progress(done, total)
        if sha256_prefix and not sha.hexdigest().startswith(sha256_prefix):
            raise DownloadError("download.corrupt", url=url)
        os.replace(tmp_name, target)
    except (urllib.error.URLError, TimeoutError) as exc:
        raise DownloadError("download.failed", url=url) from exc  # the cause stays chained
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
    return target
