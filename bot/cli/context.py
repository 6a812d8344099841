"""What every CLI command shares: the runtime and a transactional session."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property

import click
from sqlalchemy.orm import Session

from bot.actors import cli_operator
from bot.slack import job_handlers
from broadcasts.actors import Actor
from broadcasts.db import transaction
from jobs.runtime import Runtime, install


class CliContext:
    def __init__(self, runtime: Runtime | None = None) -> None:
        self._runtime = runtime

    @cached_property
    def runtime(self) -> Runtime:
        runtime = self._runtime or Runtime()
        job_handlers.register()  # any command may queue a job the Slack adapter runs
        install(runtime)
        return runtime

    def close(self) -> None:
        if "runtime" in self.__dict__:
            self.runtime.close()

    @contextmanager
    def session(self) -> Iterator[Session]:
        with transaction(self.runtime.sessions) as session:
            yield session

    @property
    def actor(self) -> Actor:
        return cli_operator()


pass_cli = click.make_pass_decorator(CliContext, ensure=True)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
