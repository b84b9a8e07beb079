"""Feature flags: a shared settings document of ``{flag: bool}`` that every process follows."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .bus import Bus
from .event import validate_name
from .settings import SharedSettings

DEFAULT_FEATURES_NAME = "features"

FlagCallback = Callable[[str, bool], object]


class Features:
    """Enable and disable named features across the farm.

    ``features = Features(bus)``; ``features.enable("new-checkout")`` in one process, and
    ``features.is_enabled("new-checkout")`` is true in every process moments later.
    Enabling and disabling are read-modify-write with retries, so two processes changing
    different flags at once both win.
    """

    def __init__(self, bus: Bus, *, name: str = DEFAULT_FEATURES_NAME) -> None:
        self.settings = SharedSettings(bus, name, default={})

    def is_enabled(self, flag: str, default: bool = False) -> bool:
        return bool(self.settings.get(flag, default))

    def enabled(self) -> list[str]:
        """The enabled flags, sorted."""
        return sorted(flag for flag, on in self._flags().items() if on)

    def enable(self, flag: str) -> int:
        return self.set(flag, True)

    def disable(self, flag: str) -> int:
        return self.set(flag, False)

    def set(self, flag: str, enabled: bool) -> int:
        """Set *flag* everywhere; returns the settings version that holds the change."""
        validate_name(flag, "feature name")

        def change(flags: Any) -> dict[str, Any]:
            updated: dict[str, Any] = dict(flags) if isinstance(flags, dict) else {}
            updated[flag] = bool(enabled)
            return updated

        return self.settings.modify(change)

    def on_change(self, callback: FlagCallback) -> FlagCallback:
        """Call *callback(flag, enabled)* for each flag whose state changed."""

        def compare(old: Any, new: Any) -> None:
            before = old if isinstance(old, dict) else {}
            after = new if isinstance(new, dict) else {}
            for flag in sorted(set(before) | set(after)):
                if bool(before.get(flag)) != bool(after.get(flag)):
                    callback(flag, bool(after.get(flag)))

        self.settings.on_change(compare)
        return callback

    def _flags(self) -> dict[str, Any]:
        value = self.settings.value
        return value if isinstance(value, dict) else {}
