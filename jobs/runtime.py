"""The composition root: builds the engine, sessions, Redis and queues from settings, lazily."""

from __future__ import annotations

from functools import cached_property

from redis import Redis
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from broadcasts.db import make_engine, make_session_factory
from jobs.settings import Settings, load_settings


class Runtime:
    """Everything a process connects to, built on first use (nothing connects at import)."""

    def __init__(self, settings: Settings | None = None) -> None:
        self._settings = settings

    @cached_property
    def settings(self) -> Settings:
        return self._settings or load_settings()

    @cached_property
    def engine(self) -> Engine:
        return make_engine(self.settings.database_url)

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        return make_session_factory(self.engine)

    @cached_property
    def redis(self) -> Redis[bytes]:
        return Redis.from_url(self.settings.redis_url)

    def close(self) -> None:
        if "engine" in self.__dict__:
            self.engine.dispose()
        if "redis" in self.__dict__:
            self.redis.close()


_current: Runtime | None = None


def current() -> Runtime:
    """The process-wide runtime used by jobs (workers build it from the environment)."""
    global _current
    if _current is None:
        _current = Runtime()
    return _current


def install(runtime: Runtime) -> None:
    """Make `runtime` the process-wide one (tests and the worker entry point)."""
    global _current
    _current = runtime
