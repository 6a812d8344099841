"""`broadcast-bot agents` refuses agent URLs that point inside the network and never prints the
credentials an agent URL carries."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner, Result

from bot.cli.main import cli


def invoke(db_url: str, *args: str, **env: str) -> Result:
    return CliRunner().invoke(cli, list(args), env={"DATABASE_URL": db_url, **env})


@pytest.mark.parametrize(
    "url",
    [
        "https://169.254.169.254/latest/meta-data/",  # cloud metadata
        "http://metadata.google.internal/computeMetadata/v1/",
        "https://10.1.2.3/agent",  # private
        "https://127.0.0.1:8443/agent",  # loopback
        "https://[fe80::1]/agent",  # link-local
        "http://agents.example.com/in",  # not https
    ],
)
def test_agents_inside_the_network_or_without_tls_are_refused_by_default(
    db_url: str, url: str
) -> None:
    result = invoke(db_url, "agents", "add", "evil", "--url", url)
    assert result.exit_code == 1
    assert "Agent URL" in result.stderr and "Traceback" not in result.stderr
    listing = json.loads(invoke(db_url, "agents", "list", "--json").stdout)
    assert listing == []  # nothing half-created


def test_the_explicit_setting_allows_local_agents_but_never_metadata(db_url: str) -> None:
    allow = {"AGENT_ALLOW_PRIVATE_URLS": "true"}
    local = invoke(db_url, "agents", "add", "dev", "--url", "http://127.0.0.1:9000/a", **allow)
    assert local.exit_code == 0, local.output
    metadata = invoke(db_url, "agents", "add", "meta", "--url", "http://169.254.169.254/", **allow)
    assert metadata.exit_code == 1 and "metadata" in metadata.stderr


def test_credentials_in_an_agent_url_are_masked_in_add_and_list(db_url: str) -> None:
    url = "https://bot:s3cr3t-pass@agents.example.com/in?token=abc123&team=7"
    added = invoke(db_url, "agents", "add", "support", "--url", url, "--json")
    assert added.exit_code == 0, added.output
    table = invoke(db_url, "agents", "list").stdout
    as_json = invoke(db_url, "agents", "list", "--json").stdout
    for out in (added.stdout, table, as_json):
        assert "s3cr3t-pass" not in out and "abc123" not in out
    assert json.loads(as_json)[0]["target"] == (
        "https://***@agents.example.com/in?token=***&team=7"
    )


def test_credentials_in_a_configuration_api_base_are_masked_in_configs_list(db_url: str) -> None:
    added = invoke(
        db_url,
        "configs",
        "add",
        "proxied",
        "--provider",
        "meta",
        "--phone-number-id",
        "1001",
        "--waba-id",
        "2002",
        "--api-base-url",
        "https://relay:hunter2@proxy.example.com/v24.0",
    )
    assert added.exit_code == 0, added.output
    assert "hunter2" not in invoke(db_url, "configs", "list").stdout
    [config] = json.loads(invoke(db_url, "configs", "list", "--json").stdout)
    assert config["api_base_url"] == "https://***@proxy.example.com/v24.0"
