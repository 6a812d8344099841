"""The CLI keeps the rules Slack keeps: they live in the service, so both adapters refuse the
same things with the same sentence, each naming its own way to take the next step."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from broadcasts.db import transaction
from broadcasts.models import Broadcast
from tests.e2e.test_cli import fails, invoke, ok
from tests.factories import add_recipients, make_broadcast, make_config


def test_cli_refuses_a_rate_above_the_numbers_throughput(
    db_url: str, sessions: sessionmaker
) -> None:
    with transaction(sessions) as session:
        make_config(session, throughput_mps=120)
    line = fails(
        db_url,
        "broadcasts",
        "new",
        "Too fast",
        "--config",
        "main",
        "--template",
        "holiday_promotion",
        "--rate",
        "500",
    )
    assert line == "Error: 500 messages/s is above the number's throughput (120/s)."
    with transaction(sessions) as session:
        assert session.scalar(select(func.count()).select_from(Broadcast)) == 0
    slower = ["--config", "main", "--template", "holiday_promotion", "--rate", "60"]
    assert "Created draft broadcast" in ok(db_url, "broadcasts", "new", "Slower", *slower)


def test_cli_test_send_missing_a_parameter_is_refused_before_calling_whatsapp(
    db_url: str, sessions: sessionmaker
) -> None:
    # Nothing listens at the configuration's API URL: a refusal naming the parameter proves
    # the check ran before any call.
    with transaction(sessions) as session:
        make_config(session, api_base_url="http://127.0.0.1:9/v24.0")
        broadcast_id = make_broadcast(session).id
    line = fails(db_url, "broadcasts", "test", broadcast_id, "+447400123456")
    assert line == (
        "Error: Test send refused. Parameter '1' of template 'holiday_promotion' is missing."
    )
    assert "not usable" in fails(db_url, "broadcasts", "test", broadcast_id, "12")


def test_cli_start_shows_the_warnings_slack_shows(
    db_url: str, redis_url: str, sessions: sessionmaker
) -> None:
    with transaction(sessions) as session:
        make_config(session)
        broadcast = make_broadcast(session)
        add_recipients(session, broadcast, ["+14155550001", "+14155550002"])
        broadcast_id = broadcast.id
    started = invoke(db_url, "broadcasts", "start", broadcast_id, env={"REDIS_URL": redis_url})
    assert started.exit_code == 0, started.output
    assert "to 2 recipients" in started.stdout
    assert "Warning: This number's messaging limit is not known yet" in started.stdout
    assert "Warning: This is a marketing template" in started.stdout
    warnings = [line for line in started.stdout.splitlines() if line.startswith("Warning:")]
    assert len(warnings) == 2 and not any("broadcast-bot" in w for w in warnings)


def test_cli_says_how_to_take_the_next_step_the_domain_names(
    db_url: str, sessions: sessionmaker
) -> None:
    with transaction(sessions) as session:
        make_config(session, "bare", with_agent=False)
        broadcast_id = make_broadcast(session).id
    assert fails(db_url, "broadcasts", "new", "x", "--config", "main", "--template", "nope") == (
        "Error: No template 'nope' on configuration 'main'; sync the templates if it was "
        "created recently. `broadcast-bot templates sync` does it."
    )
    assert fails(db_url, "broadcasts", "remove-recipients", broadcast_id, "--import", "999") == (
        "Error: Broadcast 'Holiday Sale' has no import #999. "
        f"`broadcast-bot broadcasts imports {broadcast_id[:8]}` lists them."
    )
    assert fails(
        db_url, "broadcasts", "new", "x", "--config", "bare", "--template", "holiday_promotion"
    ).endswith(
        "assign it a primary agent first. `broadcast-bot configs set-agent bare AGENT` assigns one."
    )
