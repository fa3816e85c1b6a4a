"""Finding, downloading and loading model weights.

Search order: the file shipped in the repository (segdemo's own models), the
configurable weights folder (``$SEGDEMO_WEIGHTS_DIR``), then the torch cache.
Downloads go to the torch cache. Offline, a missing file fails within seconds
with a message that names the file and the folder to put it in.

Checkpoints are only ever read as safetensors or with
``torch.load(weights_only=True)``: a pickled checkpoint cannot run code here.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from torch import nn

from segdemo import config, i18n
from segdemo.data.download import DownloadError, ProgressCallback, download_file
from segdemo.inference.tiling import whole_image_forward
from segdemo.models import registry
from segdemo.models.registry import ModelEntry


class WeightsMissingError(RuntimeError):
    """The weights file is not on disk and cannot be downloaded now.

    ``key`` / ``values`` say why (a catalogue message: the page shows it in the
    user's language); ``reason`` is that text in English, for commands and logs.
    """

    def __init__(self, entry: ModelEntry, key: str, **values: object) -> None:
        self.entry = entry
        self.filename = entry.weights.filename
        self.folder = config.weights_dir()
        self.url = entry.weights.url
        self.key = key
        self.values = values
        self.reason = i18n.t(key, "en", **values)
        super().__init__(
            f"weights for {entry.name} not found: place {self.filename} in {self.folder}"
            + (f" (download: {self.url})" if self.url else "")
            + f" — {self.reason}"
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
        out = whole_image_forward(self.net, x)  # overlap-tile for the U-Net
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


def download(entry: ModelEntry, progress: ProgressCallback | None = None,
             connect_timeout: float = 3.0) -> Path:
    """Download the official weights of ``entry`` into the torch cache.

    The SHA-256 prefix in torchvision's file names is checked; a partial file
    never takes the final name.
    """
    url = entry.weights.url
    if not url:
        raise WeightsMissingError(entry, "weights.reason.no_url")
    target = config.torch_hub_checkpoints_dir() / entry.weights.filename
    try:
        return download_file(url, target, progress, sha256_prefix=_hash_prefix(entry.weights.filename),
                             connect_timeout=connect_timeout)
    except DownloadError as exc:
        raise WeightsMissingError(entry, exc.key, **exc.values) from exc
    except OSError as exc:  # the cache folder is not writable
        raise WeightsMissingError(entry, "weights.reason.write_failed", folder=str(target.parent)) from exc


# What "Use my own checkpoint" accepts: safetensors, or a state dict torch.load reads with weights_only.
CHECKPOINT_TYPES = ("safetensors", "pth", "pt")


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
        raise WeightsMissingError(entry, "weights.reason.not_found")
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
