"""Finding, downloading and loading model weights.

Search order: the file shipped in the repository (segdemo's own models), the
configurable weights folder (``$SEGDEMO_WEIGHTS_DIR``), then the torch cache.
Downloads go to the torch cache. Offline, a missing file fails within seconds
with a message that names the file and the folder to put it in.

Checkpoints are only ever read as safetensors or with
``torch.load(weights_only=True)``: a pickled checkpoint cannot run code here.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import socket
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from segdemo import config, registry
from segdemo.registry import ModelEntry

ProgressCallback = Callable[[int, int], None]  # (bytes done, bytes total or 0)


class WeightsMissingError(RuntimeError):
    """The weights file is not on disk and cannot be downloaded now."""

    def __init__(self, entry: ModelEntry, reason: str) -> None:
        self.entry = entry
        self.filename = entry.weights.filename
        self.folder = config.weights_dir()
        self.url = entry.weights.url
        self.reason = reason
        super().__init__(
            f"weights for {entry.name} not found: place {self.filename} in {self.folder}"
            + (f" (download: {self.url})" if self.url else "")
            + f" — {reason}"
        )


class SegmentationModel(nn.Module):
    """A segmentation network whose forward returns the logits tensor [N, C, H, W].

    torchvision's models return a dict (``out`` and the training-only ``aux``);
    this wrapper gives every registry model the same interface.
    """

    def __init__(self, net: nn.Module, entry: ModelEntry, weights_path: Path | None) -> None:
        super().__init__()
        self.net = net
        self.entry_name = entry.name
        self.weights_path = weights_path
        self.channels_last = False

    @property
    def random_weights(self) -> bool:
        return self.weights_path is None

    def use_channels_last(self) -> "SegmentationModel":
        """Store weights and run inputs channels-last (N, H, W, C in memory).

        On the CPU, oneDNN's convolutions are faster in this layout: measured
        1.3x (DeepLabV3-ResNet50) to 2x (U-Net) for segdemo's and torchvision's
        models; the values are the same up to float rounding.
        """
        self.channels_last = True
        return self.to(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        out = self.net(x)
        return out["out"] if isinstance(out, dict) else out


def candidate_paths(entry: ModelEntry) -> list[Path]:
    """Where the weights of ``entry`` are looked for, in order."""
    paths = []
    if entry.weights.shipped_path is not None:
        paths.append(Path(entry.weights.shipped_path))
    paths.append(config.weights_dir() / entry.weights.filename)
    paths.append(config.torch_hub_checkpoints_dir() / entry.weights.filename)
    return paths


def locate(entry: ModelEntry) -> Path | None:
    """The first existing weights file of ``entry``, or None."""
    return next((p for p in candidate_paths(entry) if p.is_file()), None)


def _hash_prefix(filename: str) -> str | None:
    """torchvision file names end in the first hex digits of the file's SHA-256."""
    stem = filename.rsplit(".", 1)[0]
    prefix = stem.rsplit("-", 1)[-1] if "-" in stem else ""
    return prefix if len(prefix) >= 8 and all(c in "0123456789abcdef" for c in prefix) else None


def _reachable(url: str, timeout: float) -> bool:
    """A quick TCP connect to the URL's host, so an offline machine fails fast."""
    parsed = urllib.parse.urlparse(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


def download(entry: ModelEntry, progress: ProgressCallback | None = None,
             connect_timeout: float = 3.0) -> Path:
    """Download the official weights of ``entry`` into the torch cache.

    The SHA-256 prefix in torchvision's file names is checked; a partial file
    never takes the final name.
    """
    url = entry.weights.url
    if not url:
        raise WeightsMissingError(entry, "no download address (shipped weights only)")
    if not _reachable(url, connect_timeout):
        raise WeightsMissingError(entry, f"cannot reach {urllib.parse.urlparse(url).hostname} (offline?)")
    target = config.torch_hub_checkpoints_dir() / entry.weights.filename
    target.parent.mkdir(parents=True, exist_ok=True)
    sha = hashlib.sha256()
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, suffix=".partial")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=30) as response:
            total = int(response.headers.get("Content-Length") or 0)
            done = 0
            while chunk := response.read(1 << 20):
                out.write(chunk)
                sha.update(chunk)
                done += len(chunk)
                if progress:
                    progress(done, total)
        expected = _hash_prefix(entry.weights.filename)
        if expected and not sha.hexdigest().startswith(expected):
            raise WeightsMissingError(entry, "downloaded file is corrupt (hash mismatch)")
        os.replace(tmp_name, target)
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise WeightsMissingError(entry, f"download failed: {exc}") from exc
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
    return target


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a checkpoint safely: safetensors, or torch.load with weights_only=True."""
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]  # common training-checkpoint layout
    if not isinstance(state, dict):
        raise ValueError(f"{path.name} holds no state dict")
    return state


def load_state_into(net: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load ``state`` strictly, except that the training-only aux head may be absent."""
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    missing, unexpected = net.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.startswith("aux_classifier.")]
    if missing or unexpected:
        raise ValueError(
            f"checkpoint does not fit the architecture: {len(missing)} missing keys "
            f"(e.g. {missing[:3]}), {len(unexpected)} unexpected keys (e.g. {unexpected[:3]})"
        )


def load_model(
    entry: ModelEntry | str,
    device: str = "cpu",
    half: bool = False,
    allow_random: bool | None = None,
    fetch: bool = False,
    progress: ProgressCallback | None = None,
) -> SegmentationModel:
    """Build ``entry``'s network, load its weights and move it to ``device`` in eval mode.

    With ``fetch`` a missing file is downloaded (with ``progress``). Without
    weights, ``allow_random`` (default: ``$SEGDEMO_ALLOW_RANDOM_WEIGHTS``) gives a
    randomly initialised network for offline tests; otherwise
    :class:`WeightsMissingError` is raised.
    """
    if isinstance(entry, str):
        entry = registry.get(entry)
    if allow_random is None:
        allow_random = config.allow_random_weights()
    path = locate(entry)
    if path is None and fetch:
        try:
            path = download(entry, progress)
        except WeightsMissingError:
            if not allow_random:
                raise
    if path is None and not allow_random:
        raise WeightsMissingError(entry, "file not found")
    torch.manual_seed(0)  # random-weight fallbacks are at least reproducible
    net = entry.build()
    if path is not None:
        load_state_into(net, read_state_dict(path))
    if getattr(net, "aux_classifier", None) is not None:
        net.aux_classifier = None  # training-only head: skip its compute
    model = SegmentationModel(net, entry, path).eval().to(device)
    if torch.device(device).type == "cpu":
        model = model.use_channels_last()
    if half:
        model = model.half()
    return model


def register_user_checkpoint(base: ModelEntry, path: str | Path) -> ModelEntry:
    """Register a user's checkpoint for ``base``'s architecture as a new entry.

    The file is validated by loading it strictly into the architecture first.
    """
    from dataclasses import replace

    path = Path(path)
    if path.suffix not in (".safetensors", ".pth", ".pt"):
        raise ValueError("only .safetensors, .pth or .pt files are accepted")
    load_state_into(base.build(), read_state_dict(path))
    digest = hashlib.blake2b(path.read_bytes(), digest_size=6).hexdigest()
    entry = replace(
        base,
        name=f"user-{base.name}-{digest}",
        backbone=f"{base.backbone} · {path.name}",
        weights=registry.WeightsSpec(filename=path.name, shipped_path=path,
                                     size_bytes=path.stat().st_size),
        metrics={},
        metrics_source="",
        source="user",
        offline_default=False,
    )
    registry.register(entry)
    return entry


# ---------------------------------------------------------------- CLI


def _format_size(n: int | None) -> str:
    return "?" if n is None else f"{n / 1e6:.1f} MB"


def _cmd_list(args: argparse.Namespace) -> int:
    rows = []
    for e in registry.list_models():
        path = locate(e)
        state = "cached" if path else "missing"
        rows.append((e.name, e.display_name, state, _format_size(path.stat().st_size if path else e.weights.size_bytes),
                     str(path) if path else str(config.weights_dir() / e.weights.filename)))
    width = [max(len(r[i]) for r in rows) for i in range(4)]
    print(f"{'NAME':<{width[0]}}  {'MODEL':<{width[1]}}  {'STATE':<{width[2]}}  {'SIZE':>{width[3]}}  PATH")
    for r in rows:
        print(f"{r[0]:<{width[0]}}  {r[1]:<{width[1]}}  {r[2]:<{width[2]}}  {r[3]:>{width[3]}}  {r[4]}")
    return 0


def _cmd_download(args: argparse.Namespace) -> int:
    if not args.all and not args.name:
        print("name a model or pass --all", file=sys.stderr)
        return 2
    entries = registry.list_models() if args.all else [registry.get(n) for n in args.name]
    failures = 0
    for e in entries:
        if locate(e):
            print(f"{e.name}: already present ({locate(e)})")
            continue

        def bar(done: int, total: int, name: str = e.name) -> None:
            share = done / total if total else 0
            print(f"\r{name}: [{'#' * int(share * 30):<30}] {done / 1e6:6.1f}/{total / 1e6:.1f} MB",
                  end="", file=sys.stderr, flush=True)

        try:
            path = download(e, bar)
            print(f"\n{e.name}: saved {path}")
        except WeightsMissingError as exc:
            failures += 1
            print(f"{e.name}: {exc}", file=sys.stderr)
    return 1 if failures else 0


def add_subcommand(subparsers: Any) -> None:
    """``weights list`` and ``weights download [NAME...|--all]``."""
    parser = subparsers.add_parser("weights", help="list or pre-fetch model weights")
    sub = parser.add_subparsers(dest="weights_command", required=True)
    p_list = sub.add_parser("list", help="every model with cached/missing and size")
    p_list.set_defaults(func=_cmd_list)
    p_dl = sub.add_parser("download", help="download weights before a lecture")
    p_dl.add_argument("name", nargs="*", help="model names (see 'weights list')")
    p_dl.add_argument("--all", action="store_true", help="every model with a download address")
    p_dl.set_defaults(func=_cmd_download)
