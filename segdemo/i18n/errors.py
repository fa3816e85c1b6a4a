"""Errors whose message the user reads: they carry a catalogue key, not English text."""

from __future__ import annotations


class UserError(ValueError):
    """A problem with the user's input; ``key`` names the catalogue message, ``values`` fill it."""

    def __init__(self, key: str, **values: object) -> None:
        super().__init__(f"{key} {values}")
        self.key = key
        self.values = values
