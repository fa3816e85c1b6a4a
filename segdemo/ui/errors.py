"""Why something failed, in the session's language — never a library's English text.

segdemo's own errors carry a catalogue key and values (:class:`segdemo.i18n.errors.UserError`,
:class:`segdemo.data.download.DownloadError`, :class:`segdemo.models.weights.WeightsMissingError`):
they are said in the user's language. Anything else (PyTorch, NumPy, the OS) is
named by its kind only: its text is English, long, and for a pickled checkpoint
it advises ``weights_only=False``, which must never reach a student's screen.
"""

from __future__ import annotations

from pathlib import Path

from segdemo.models.registry import ModelEntry
from segdemo.ui.state import tr


def _is_out_of_memory(exc: BaseException) -> bool:
    return isinstance(exc, MemoryError) or "out of memory" in str(exc).lower() \
        or type(exc).__name__ == "OutOfMemoryError"


def reason(exc: BaseException) -> str:
    """Why ``exc`` happened, in the session's language (the catalogue text when it is one of ours)."""
    key = getattr(exc, "key", None)
    values = getattr(exc, "values", None)
    if isinstance(key, str) and isinstance(values, dict):
        try:
            return tr(key, **values)
        except KeyError:  # a key that is not in the catalogue: fall through to the kind
            pass
    if _is_out_of_memory(exc):
        return tr("error.out_of_memory")
    if isinstance(exc, FileNotFoundError) and exc.filename:
        return tr("error.file_missing", name=Path(str(exc.filename)).name)
    return tr("error.unknown", kind=type(exc).__name__)


def checkpoint_reason(exc: BaseException, entry: ModelEntry) -> str:
    """Why a user's checkpoint was refused, in the session's language.

    The weights loader's own refusals are recognised by their (English) text and
    said in the user's words; PyTorch's text itself is never shown.
    """
    if getattr(exc, "key", None):
        return reason(exc)
    text = str(exc)
    if "does not fit the architecture" in text:
        return tr("sidebar.ckpt.mismatch", arch=entry.architecture, labels=tr(f"labelset.{entry.label_set_key}"))
    if "holds no state dict" in text:
        return tr("sidebar.ckpt.no_state_dict")
    if "only .safetensors" in text:
        return tr("sidebar.ckpt.type")
    if "weights_only" in text or "Unpickl" in type(exc).__name__ or "global" in text.lower():
        return tr("sidebar.ckpt.unsafe")
    return tr("sidebar.ckpt.unreadable")
