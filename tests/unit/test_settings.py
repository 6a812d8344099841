"""Settings: names, defaults, `.env` files, and one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from broadcasts.errors import SettingsError
from jobs.settings import load_settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in (
        "DATABASE_URL",
        "REDIS_URL",
        "SLACK_BOT_TOKEN",
        "BROADCAST_ADMINS",
        "PORT",
        "PHONE_DEFAULT_REGION",
        "KAPSO_API_URL",
        "SLACK_API_URL",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def test_defaults_are_the_documented_ones() -> None:
    s = load_settings()
    assert s.database_url == "sqlite:///./broadcasts.db"
    assert s.redis_url == "redis://localhost:6379/0"
    assert s.slack_api_url == "https://slack.com/api/"
    assert s.kapso_api_url == "https://api.kapso.ai/meta/whatsapp/v24.0"
    assert s.admin_ids == frozenset()


def test_environment_and_dotenv_are_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("SLACK_BOT_TOKEN=xoxb-from-file\nBROADCAST_ADMINS=U1, S2 ,\n")
    monkeypatch.setenv("REDIS_URL", "redis://example:6379/3")
    s = load_settings()
    assert s.slack_bot_token == "xoxb-from-file"
    assert s.redis_url == "redis://example:6379/3"
    assert s.admin_ids == frozenset({"U1", "S2"})


def test_malformed_setting_is_one_line_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "eighty")
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert str(info.value).startswith("PORT is invalid:")
    assert "\n" not in str(info.value)


def test_missing_required_setting_says_which_and_why() -> None:
    s = load_settings()
    with pytest.raises(
        SettingsError, match=r"^SLACK_BOT_TOKEN is not set: needed to post to Slack\.$"
    ):
        s.require("slack_bot_token", "needed to post to Slack")


def test_region_is_normalised(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PHONE_DEFAULT_REGION", "gb")
    assert load_settings().phone_default_region == "GB"


def test_provider_settings_keep_their_variable_names_and_stay_out_of_reprs(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text("KAPSO_WEBHOOK_SECRET=kapso-hook-secret-from-file\n")
    monkeypatch.setenv("KAPSO_API_KEY", "kapso-key-0123456789")
    monkeypatch.setenv("WHATSAPP_APP_SECRET", "meta-app-secret-0123456789")
    monkeypatch.setenv("META_API_URL", "https://graph.example.test/v24.0")
    s = load_settings()
    assert s.kapso_api_key == "kapso-key-0123456789"
    assert s.kapso_webhook_secret == "kapso-hook-secret-from-file"
    assert s.meta_api_url == "https://graph.example.test/v24.0"
    shown = repr(s) + str(s)
    for secret in ("kapso-key-0123456789", "meta-app-secret-0123456789", "kapso-hook-secret"):
        assert secret not in shown
    assert "graph.example.test" in shown  # only secrets are hidden
