"""`broadcast-bot doctor`: settings, database, Redis, Slack and WhatsApp checks, each with a fix."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from redis import Redis
from redis.exceptions import RedisError
from rq import Worker
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import Engine, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from broadcasts.configs import Limits, get_config, record_limits
from broadcasts.db import make_engine, make_session_factory, transaction
from broadcasts.enums import Provider, TemplateStatus
from broadcasts.errors import BroadcastBotError
from broadcasts.models import WhatsAppConfig
from broadcasts.urls import mask_credentials
from jobs.settings import Settings
from jobs.whatsapp_targets import target_for
from kapso.client import ApiTarget, NumberLimits, WhatsAppClient
from kapso.errors import ADVICE, WhatsAppError
from migrations import current_revision, head_revision

log = logging.getLogger(__name__)

PASS, WARN, FAIL = "PASS", "WARN", "FAIL"
TIMEOUT_SECONDS = 10.0
REQUIREMENTS = ("slack", "workers")


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # PASS | WARN | FAIL
    detail: str
    fix: str | None = None

    @property
    def ok(self) -> bool:
        return self.status != FAIL

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _first_line(exc: BaseException) -> str:
    message = str(getattr(exc, "orig", None) or exc).strip()
    return (message.splitlines() or [type(exc).__name__])[0]


# -- settings ----------------------------------------------------------------------------------


def load_checked_settings(**overrides: Any) -> tuple[Settings, list[Check]]:
    """The settings, with one FAIL per invalid variable (which then falls back to its default)."""
    try:
        return Settings(**overrides), [Check("settings", PASS, "environment and .env read")]
    except ValidationError as exc:
        checks, defaults = [], {}
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else "settings"
            checks.append(
                Check(
                    f"settings: {field.upper()}",
                    FAIL,
                    f"{field.upper()} is invalid: {error['msg']}",
                    f"Set {field.upper()} to a valid value (or unset it) in .env or the "
                    "environment.",
                )
            )
            if field in Settings.model_fields:
                defaults[field] = Settings.model_fields[field].default
        return Settings(**{**overrides, **defaults}), checks


# -- database and Redis ------------------------------------------------------------------------


def check_database(settings: Settings) -> tuple[Engine | None, Check]:
    url = settings.database_url
    try:
        parsed = make_url(url)
    except ArgumentError:
        return None, Check(
            "database",
            FAIL,
            "DATABASE_URL is not a database URL",
            "Set DATABASE_URL, e.g. postgresql+psycopg://user:pass@host:5432/db or "
            "sqlite:///./broadcasts.db.",
        )
    shown = mask_credentials(url)
    path = parsed.database
    is_file = parsed.get_backend_name() == "sqlite" and path and path != ":memory:"
    if is_file and not Path(str(path)).exists():
        return None, Check(
            "database",
            FAIL,
            f"the SQLite file {path} does not exist ({shown})",
            "Run `broadcast-bot migrate` to create it, or point DATABASE_URL at the existing file.",
        )
    try:
        kwargs: dict[str, Any] = {}
        if parsed.get_backend_name() == "postgresql":
            kwargs["connect_args"] = {"connect_timeout": int(TIMEOUT_SECONDS)}
        engine = make_engine(url, **kwargs)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except (SQLAlchemyError, ImportError, OSError) as exc:
        return None, Check(
            "database",
            FAIL,
            f"cannot connect to {shown}: {_first_line(exc)}",
            "Check DATABASE_URL (host, port, user, password, database) and that the "
            "database server is running.",
        )
    return engine, Check("database", PASS, f"connected to {shown}")


def check_migrations(engine: Engine) -> Check:
    head = head_revision()
    try:
        current = current_revision(engine)
    except SQLAlchemyError as exc:
        return Check("migrations", FAIL, f"cannot read the schema version: {_first_line(exc)}")
    if current is None:
        return Check(
            "migrations",
            FAIL,
            f"the database has no schema yet (latest is {head})",
            "Run `broadcast-bot migrate`.",
        )
    if current != head:
        from alembic.script import ScriptDirectory

        from migrations import alembic_config

        known = ScriptDirectory.from_config(alembic_config("sqlite://")).get_revision(current)
        if known is None:
            return Check(
                "migrations",
                FAIL,
                f"the database is at {current}, a revision this code does not know",
                "Deploy the code that migrated this database (it is newer than this one).",
            )
        return Check(
            "migrations",
            FAIL,
            f"the database is at {current}, the latest schema is {head}",
            "Run `broadcast-bot migrate`.",
        )
    return Check("migrations", PASS, f"at the latest schema ({head})")


def check_redis(settings: Settings) -> tuple[Redis[bytes] | None, Check]:
    shown = mask_credentials(settings.redis_url)
    try:
        redis: Redis[bytes] = Redis.from_url(
            settings.redis_url, socket_timeout=TIMEOUT_SECONDS, socket_connect_timeout=5
        )
        redis.ping()
    except (RedisError, ValueError, OSError) as exc:
        return None, Check(
            "redis",
            FAIL,
            f"cannot reach {shown}: {_first_line(exc)}",
            "Check REDIS_URL and that redis-server is running (e.g. `redis-server` or "
            "`docker run -p 6379:6379 redis`).",
        )
    detail = f"reachable at {shown}"
    try:
        policy = redis.config_get("maxmemory-policy").get("maxmemory-policy")
    except RedisError:  # CONFIG is often disabled on managed Redis
        policy = None
    if policy not in (None, "noeviction"):
        return redis, Check(
            "redis",
            WARN,
            f"{detail}, but maxmemory-policy is {policy}: Redis may evict queued jobs",
            "Set `maxmemory-policy noeviction` in the Redis configuration.",
        )
    return redis, Check("redis", PASS, detail)


def check_workers(redis: Redis[bytes], required: bool) -> Check:
    try:
        count = Worker.count(connection=redis)
    except RedisError as exc:
        return Check("workers", FAIL, f"cannot list workers: {_first_line(exc)}")
    if count:
        return Check("workers", PASS, f"{count} worker(s) running")
    return Check(
        "workers",
        FAIL if required else WARN,
        "no worker is running: broadcasts, imports and webhooks wait in the queues",
        "Start one: `broadcast-bot worker` (or `make run`).",
    )


# -- Slack ---------------------------------------------------------------------------------------


def check_slack(settings: Settings, required: bool) -> list[Check]:
    token = settings.slack_bot_token
    if not token:
        return [
            Check(
                "slack token",
                FAIL if required else WARN,
                "SLACK_BOT_TOKEN is not set: Slack is not configured",
                "Create the app from manifest.yml, install it, and set SLACK_BOT_TOKEN to its "
                "Bot User OAuth Token (xoxb-…).",
            )
        ]
    checks = [_slack_auth(settings, token)]
    if not token.startswith("xoxb-"):
        checks.append(
            Check(
                "slack token",
                WARN,
                "SLACK_BOT_TOKEN does not look like a bot token (xoxb-…)",
                "Use the Bot User OAuth Token from the app's OAuth & Permissions page.",
            )
        )
    checks.append(_signing(settings))
    if settings.slack_app_token and not settings.slack_app_token.startswith("xapp-"):
        checks.append(
            Check(
                "slack app token",
                FAIL,
                "SLACK_APP_TOKEN does not look like an app-level token (xapp-…)",
                "Generate an app-level token with connections:write (Basic Information) "
                "and set SLACK_APP_TOKEN to it.",
            )
        )
    return checks


def _slack_auth(settings: Settings, token: str) -> Check:
    base = (
        settings.slack_api_url
        if settings.slack_api_url.endswith("/")
        else (settings.slack_api_url + "/")
    )
    try:
        answer = WebClient(
            token=token, base_url=base, timeout=int(TIMEOUT_SECONDS), retry_handlers=[]
        ).auth_test()
    except SlackApiError as exc:
        error = exc.response.get("error") if exc.response is not None else None
        fixes = {
            "invalid_auth": "SLACK_BOT_TOKEN is wrong: copy the Bot User OAuth Token (xoxb-…) "
            "from the app's OAuth & Permissions page.",
            "token_revoked": "The token was revoked: reinstall the app and set the new "
            "SLACK_BOT_TOKEN.",
            "account_inactive": "The app or workspace is inactive: reinstall the app and set "
            "the new SLACK_BOT_TOKEN.",
            "not_authed": "Set SLACK_BOT_TOKEN.",
        }
        return Check(
            "slack token",
            FAIL,
            f"auth.test failed: {error or exc}",
            fixes.get(str(error), "Check SLACK_BOT_TOKEN and SLACK_API_URL."),
        )
    except Exception as exc:
        return Check(
            "slack token",
            FAIL,
            f"cannot reach the Slack API at {base}: {_first_line(exc)}",
            "Check SLACK_API_URL (default https://slack.com/api/) and the network.",
        )
    return Check(
        "slack token",
        PASS,
        f"auth.test ok: @{answer.get('user')} in {answer.get('team')} ({answer.get('team_id')})",
    )


def _signing(settings: Settings) -> Check:
    if settings.slack_signing_secret:
        return Check("slack signing secret", PASS, "SLACK_SIGNING_SECRET is set")
    if settings.slack_app_token:
        return Check(
            "slack signing secret",
            WARN,
            "SLACK_SIGNING_SECRET is not set: only Socket Mode (`broadcast-bot socket`) works",
            "For HTTP mode set SLACK_SIGNING_SECRET (Basic Information → Signing Secret).",
        )
    return Check(
        "slack signing secret",
        FAIL,
        "SLACK_SIGNING_SECRET is not set, and neither is SLACK_APP_TOKEN: Slack requests "
        "cannot be verified",
        "Set SLACK_SIGNING_SECRET (Basic Information → Signing Secret), or SLACK_APP_TOKEN "
        "(xapp-…) for Socket Mode.",
    )


# -- WhatsApp ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Config:
    name: str
    provider: str
    throughput_mps: int
    target: ApiTarget | None
    missing: str | None


def _configs(engine: Engine) -> list[_Config]:
    out = []
    with make_session_factory(engine)() as session:
        for config in session.scalars(select(WhatsAppConfig).order_by(WhatsAppConfig.name)):
            try:
                target, missing = target_for(config), None
            except BroadcastBotError as exc:
                target, missing = None, str(exc)
            out.append(
                _Config(config.name, str(config.provider), config.throughput_mps, target, missing)
            )
    return out


def check_whatsapp(engine: Engine) -> tuple[set[str], list[Check]]:
    """Every configuration: credential set, templates readable, throughput known."""
    configs = _configs(engine)
    if not configs:
        return set(), [
            Check(
                "whatsapp",
                WARN,
                "no WhatsApp configuration yet",
                "Add one: `broadcast-bot configs add NAME --provider kapso --phone-number-id … "
                "--waba-id …` (or `make demo` for the sandbox).",
            )
        ]
    checks: list[Check] = []
    reachable = []
    for config in configs:
        name = f"whatsapp '{config.name}'"
        if config.target is None:
            env = (config.missing or "").split(" ")[0]
            checks.append(
                Check(
                    f"{name} credential",
                    FAIL,
                    config.missing or "credential missing",
                    f"Set {env} (in .env or the environment) to the API key/token of this number.",
                )
            )
        else:
            reachable.append(config)
    results = asyncio.run(_probe_all([c.target for c in reachable if c.target]))
    for config, (templates, limits) in zip(reachable, results, strict=True):
        stored: list[Check] = []
        if isinstance(limits, NumberLimits):
            stored, rate = _record(engine, config, limits)
            config = replace(config, throughput_mps=rate)
        checks.extend(_api_checks(config, templates, limits))
        checks.extend(stored)
    return {c.provider for c in configs}, checks


def _record(engine: Engine, config: _Config, limits: NumberLimits) -> tuple[list[Check], int]:
    """Store the limits doctor just read (as `templates sync` does); returns the rate after."""
    name = f"whatsapp '{config.name}' limits"
    found = Limits(limits.throughput_level, limits.throughput_mps, limits.messaging_limit)
    try:
        with transaction(make_session_factory(engine)) as session:
            changes = record_limits(session, config.name, found)
            rate = get_config(session, config.name).throughput_mps
    except (BroadcastBotError, SQLAlchemyError) as exc:
        return [Check(name, WARN, f"not stored: {exc}")], config.throughput_mps
    tier = limits.messaging_limit or "not reported"
    detail = f"messaging limit {tier}, throughput level {limits.throughput_level or 'unknown'}"
    if changes:
        detail += "; updated: " + "; ".join(changes)
    return [Check(name, PASS, detail)], rate


async def _probe_all(
    targets: list[ApiTarget],
) -> list[tuple[Any, Any]]:
    async with WhatsAppClient(max_in_flight=8, timeout=TIMEOUT_SECONDS) as client:
        return await asyncio.gather(*(_probe(client, t) for t in targets))


async def _probe(client: WhatsAppClient, target: ApiTarget) -> tuple[Any, Any]:
    async def safely(coro: Any) -> Any:
        try:
            return await coro
        except WhatsAppError as exc:
            return exc
        except Exception as exc:  # never let one number's surprise hide the others
            return WhatsAppError(code=None, title=_first_line(exc), config_name=target.config_name)

    templates = await safely(client.fetch_templates(target))
    if isinstance(templates, WhatsAppError):
        return templates, None  # the same credential would fail the same way
    return templates, await safely(client.get_number_limits(target))


def _api_checks(config: _Config, templates: Any, limits: Any) -> list[Check]:
    name = f"whatsapp '{config.name}'"
    env = config.target.credential_env if config.target else None
    if isinstance(templates, WhatsAppError):
        return [
            Check(
                f"{name} templates",
                FAIL,
                f"listing templates failed: error {templates.code} ({templates.title})"
                if templates.code is not None
                else f"listing templates failed: {templates.title}",
                templates.hint
                or (
                    f"Put a valid API key/token in {env}."
                    if templates.code in (190, 10, 200, 100)
                    else ADVICE[templates.classification.action]
                ),
            )
        ]
    approved = sum(1 for t in templates.templates if t.status == TemplateStatus.APPROVED)
    checks = [
        Check(
            f"{name} templates",
            PASS if approved else WARN,
            f"{len(templates.templates)} template(s), {approved} approved",
            None
            if approved
            else "Create a template in WhatsApp Manager and wait for its approval, then "
            f"`broadcast-bot templates sync {config.name}`.",
        )
    ]
    throughput = limits.throughput_mps if isinstance(limits, NumberLimits) else limits
    if isinstance(throughput, WhatsAppError):
        checks.append(
            Check(
                f"{name} throughput",
                WARN,
                f"could not read the number's throughput: {throughput.title}",
                "Check the phone number id of the configuration (`broadcast-bot configs list`).",
            )
        )
    elif throughput is None:
        checks.append(
            Check(f"{name} throughput", WARN, "WhatsApp does not say the number's throughput")
        )
    elif throughput < config.throughput_mps:
        checks.append(
            Check(
                f"{name} throughput",
                WARN,
                f"configured for {config.throughput_mps}/s but the number allows {throughput}/s",
                f"`broadcast-bot configs set-pacing {config.name} --throughput {throughput}`.",
            )
        )
    else:
        checks.append(
            Check(
                f"{name} throughput",
                PASS,
                f"the number allows {throughput}/s; configured {config.throughput_mps}/s",
            )
        )
    return checks


def check_webhook_secrets(settings: Settings, providers: Collection[str] | None) -> list[Check]:
    """The secrets the providers in use need (all of them when the providers are unknown)."""
    unknown = providers is None
    used = set(providers or ())
    needs = {
        "WHATSAPP_APP_SECRET": (
            settings.whatsapp_app_secret,
            unknown or bool(used & {Provider.META, Provider.SANDBOX}),
            "verifies Meta's X-Hub-Signature-256 on /webhooks/whatsapp",
            "the app secret of the Meta app (App settings → Basic → App secret); "
            "for the sandbox: sandbox-app-secret",
        ),
        "WHATSAPP_VERIFY_TOKEN": (
            settings.whatsapp_verify_token,
            unknown or Provider.META in used,
            "answers Meta's subscription handshake on GET /webhooks/whatsapp",
            "any long random string, entered again as the Verify token in Meta's webhook settings",
        ),
        "KAPSO_WEBHOOK_SECRET": (
            settings.kapso_webhook_secret,
            unknown or Provider.KAPSO in used,
            "verifies Kapso's X-Webhook-Signature on /webhooks/kapso",
            "the secret shown when you create the webhook in Kapso",
        ),
    }
    checks = []
    for variable, (value, needed, what, source) in needs.items():
        if value:
            checks.append(Check(variable, PASS, f"set ({what})"))
        elif needed:
            checks.append(
                Check(
                    variable,
                    WARN if unknown else FAIL,
                    f"{variable} is not set: it {what}",
                    f"Set {variable} to {source}.",
                )
            )
    return checks


# -- all together ------------------------------------------------------------------------------


@contextmanager
def _quiet() -> Iterator[None]:
    """Doctor reports problems itself; the libraries' own warnings would repeat them."""
    previous = logging.root.manager.disable
    logging.disable(logging.ERROR)
    try:
        yield
    finally:
        logging.disable(previous)


def diagnose(require: Collection[str] = (), **overrides: Any) -> list[Check]:
    """Run every check in order; later checks are skipped (and say so) when they cannot run."""
    with _quiet():
        settings, checks = load_checked_settings(**overrides)
        engine, database = check_database(settings)
        checks.append(database)
        providers: set[str] | None = None
        if engine is not None:
            migrations = check_migrations(engine)
            checks.append(migrations)
            if migrations.ok:
                providers, whatsapp = check_whatsapp(engine)
                checks.extend(whatsapp)
            else:
                checks.append(
                    Check("whatsapp", WARN, "not checked: the database schema is not current")
                )
            engine.dispose()
        else:
            checks.append(Check("whatsapp", WARN, "not checked: the database is not usable"))
        redis, redis_check = check_redis(settings)
        checks.append(redis_check)
        if redis is not None:
            checks.append(check_workers(redis, "workers" in require))
            redis.close()
        checks.extend(check_slack(settings, "slack" in require))
        checks.extend(check_webhook_secrets(settings, providers))
    return checks


def summary(checks: list[Check]) -> str:
    failed = sum(c.status == FAIL for c in checks)
    warned = sum(c.status == WARN for c in checks)
    passed = sum(c.status == PASS for c in checks)
    if failed:
        return f"{failed} failed, {warned} warning(s), {passed} passed."
    return f"All good: {passed} passed, {warned} warning(s)."
