"""The settings object: one definition, parsed strictly, documented by generation."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

from aiops.kinds import Channel, IncidentKind, Severity
from aiops.settings import Settings, reference, remediation_field

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_the_configuration_reference_is_generated_from_the_settings():
    assert DOC.read_text() == reference(), (
        "docs/configuration.md is out of date: run `python -m aiops.settings > docs/configuration.md`"
    )


def test_every_setting_is_documented_once_with_its_own_variable():
    names = [f.metadata["env"] for f in fields(Settings)]
    assert len(names) == len(set(names))
    text = reference()
    for f in fields(Settings):
        assert f.metadata["doc"], f.name
        assert text.count(f"| `{f.metadata['env']}` |") == 1


def test_every_incident_kind_has_a_remediation_hook_setting():
    names = {f.name for f in fields(Settings)}
    assert {remediation_field(kind) for kind in IncidentKind} <= names
    s = Settings.load({"AIOPS_REMEDIATION_TIMEOUT_URL": " http://127.0.0.1:9/fix "})
    assert s.remediation_url("timeout") == "http://127.0.0.1:9/fix"
    assert s.remediation_url("latency") is None
    assert s.remediation_url("no-such-kind") is None


def test_environment_text_is_parsed_and_bad_values_name_their_variable():
    s = Settings.load(
        {
            "AIOPS_DETECTION_INTERVAL": "2.5",
            "AIOPS_IGNORE_SERVICES": "aiops, batch ,",
            "AIOPS_PROTECT_READS": "yes",
            "AIOPS_NOTIFY_RATE_LIMITS": "high=60",
            "UNRELATED": "x",
            "AIOPS_WEBHOOK_URL": "",
        }
    )
    assert s.detection_interval == 2.5
    assert s.ignore_services == ("aiops", "batch")
    assert s.protect_reads is True
    assert s.notify_rate_limits == {"critical": 0.0, "high": 60.0, "medium": 900.0, "low": 3600.0}
    assert s.webhook_url is None
    for name, bad in [
        ("AIOPS_DETECTION_INTERVAL", "0"),
        ("AIOPS_BUFFER_MAX", "1e3"),
        ("AIOPS_NOTIFY_RATE_LIMITS", "urgent=1"),
        ("AIOPS_RECORDER", "fancy"),
    ]:
        with pytest.raises(ValueError, match=name):
            Settings.load({name: bad})


def test_overrides_win_and_may_name_a_field_or_a_variable():
    s = Settings.load({"AIOPS_DETECTION_INTERVAL": "5"}, {"detection_interval": 1.0, "AIOPS_API_TOKEN": "t"})
    assert (s.detection_interval, s.api_token) == (1.0, "t")
    with pytest.raises(ValueError, match="AIOPS_RECORDER"):
        Settings(recorder="fancy")


def test_a_test_configuration_replaces_the_environment(monkeypatch, sqlite_url):
    """A token exported in the developer's shell does not leak into an app built with a configuration."""
    from aiops.settings import settings_of
    from app import create_app

    monkeypatch.setenv("AIOPS_API_TOKEN", "from-the-shell")
    monkeypatch.setenv("AIOPS_DETECTION_INTERVAL", "not a number")
    app = create_app({"SQLALCHEMY_DATABASE_URI": sqlite_url, "AIOPS_SCHEDULER": False})
    assert settings_of(app).api_token is None
    assert settings_of(app).detection_interval == Settings().detection_interval
    with pytest.raises(ValueError, match="AIOPS_DETECTION_INTERVAL"):
        create_app()  # no configuration: the environment is read, and checked


def test_enums_keep_their_stored_strings_and_order():
    assert Severity.HIGH == "high" and [s.value for s in Severity] == ["low", "medium", "high", "critical"]
    assert Severity.at(5) is Severity.CRITICAL and Severity.at(-1) is Severity.LOW
    assert Severity.HIGH.rank > Severity.MEDIUM.rank
    assert Channel.notifications() == (Channel.WEBHOOK, Channel.SLACK, Channel.PAGERDUTY)
