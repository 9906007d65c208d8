"""Registers Locust event listeners (Locust's EventHook is untyped; this keeps callers typed)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from locust import events


def listen(name: str, handler: Callable[..., Any]) -> None:
    """Call `handler` on the Locust event `name` (e.g. "request", "quitting")."""
    hook: Any = getattr(events, name)
    hook.add_listener(handler)
