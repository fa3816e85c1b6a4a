"""``python -m segdemo predict IMAGE... --model NAME --out DIR``: batch work without the browser.

Writes, per image, ``<stem>_labels.png`` (palette PNG, values = class indices)
and ``<stem>_overlay.png``. A file that cannot be read is reported and skipped.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from segdemo import i18n
from segdemo.inference import devices
from segdemo.models import registry
from segdemo.render import overlay
from segdemo.models import weights
from segdemo.data.images import ImageError, load_image_file
from segdemo.inference.pipeline import predict


def predict_files(paths: list[Path], model_name: str, out_dir: Path, device: str | None = None,
                  inference_size: int | None = None, opacity: float = 0.5, fetch: bool = True,
                  lang: str = "en") -> tuple[list[Path], list[str]]:
    """Segment ``paths`` and write label maps and overlays; returns (written files, errors)."""
    entry = registry.get(model_name)
    device = device or devices.auto_device()
    model = weights.load_model(entry, device=device, fetch=fetch)
    size = inference_size if inference_size is not None else entry.preprocess.resize_size
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    errors: list[str] = []
    for path in paths:
        try:
            image = load_image_file(str(path))
        except ImageError as exc:
            errors.append(i18n.t(exc.key, lang, **exc.values))
            continue
        except OSError as exc:
            errors.append(f"{path}: {exc.strerror or exc}")
            continue
        pred = predict(model, entry, image.rgb, size or None, device)
        labels_path = out_dir / f"{path.stem}_labels.png"
        overlay_path = out_dir / f"{path.stem}_overlay.png"
        labels_path.write_bytes(overlay.label_png_bytes(pred.labels, entry.label_set))
        overlay_path.write_bytes(overlay.png_bytes(overlay.overlay(image.rgb, pred.labels, entry.label_set, opacity)))
        written += [labels_path, overlay_path]
    return written, errors


def _run(args: argparse.Namespace) -> int:
    try:
        written, errors = predict_files([Path(p) for p in args.images], args.model, Path(args.out),
                                        args.device, args.size, args.opacity)
    except (KeyError, weights.WeightsMissingError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for path in written:
        print(path)
    for message in errors:
        print(f"skipped: {message}", file=sys.stderr)
    return 1 if errors else 0


def add_subcommand(subparsers: Any) -> None:
    """The ``predict`` subcommand."""
    parser = subparsers.add_parser("predict", help="segment images and write label maps and overlays")
    parser.add_argument("images", nargs="+", help="image files")
    parser.add_argument("--model", default=registry.default_model().name,
                        help="model name (see 'python -m segdemo weights list')")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--device", choices=devices.available_devices(), default=None)
    parser.add_argument("--size", type=int, default=None,
                        help="shorter side fed to the network (default: the model's own, 0 = original)")
    parser.add_argument("--opacity", type=float, default=0.5)
    parser.set_defaults(func=_run)
