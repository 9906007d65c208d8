"""The base of the HTTP users: settings from the command line, short timeouts, closed on stop."""

from __future__ import annotations

from locust import FastHttpUser
from locust.env import Environment

from _session import settings_of


class SaturationUser(FastHttpUser):
    """A client timeout short enough that a stuck step fails rather than hangs."""

    abstract = True

    def __init__(self, environment: Environment) -> None:
        self.settings = settings_of(environment)
        self.network_timeout = self.connection_timeout = self.settings.request_timeout
        super().__init__(environment)

    def on_stop(self) -> None:
        # Locust leaves a stopped user's keep-alive connections open: a pool that keeps a thread
        # per connection would stay pinned by them through the phases that follow.
        self.client.client.close()
