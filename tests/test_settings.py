"""Start-up configuration: a bad value is one sentence naming the variable."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from app.settings import SettingsError, load_settings

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("variable", "value", "fix"),
    [
        ("PERSEPHONE_CATALOG_MODE", "cloud", "'mock' or 'runpod'"),
        ("PERSEPHONE_REQUEST_TIMEOUT_S", "-5", "above 0"),
        ("PERSEPHONE_REQUEST_TIMEOUT_S", "soon", "above 0"),
        ("PERSEPHONE_SAMPLE_HZ", "50", "0.5 to 10"),
        ("PERSEPHONE_RUNPOD_PROXY_URL", "https://proxy.example", "{pod_id}"),
    ],
)
def test_bad_value_names_variable_value_and_fix(
    persephone_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
    value: str,
    fix: str,
) -> None:
    monkeypatch.setenv(variable, value)

    with pytest.raises(SettingsError) as caught:
        load_settings()

    message = str(caught.value)
    assert message.startswith(f"{variable}={value!r} is not valid")
    assert fix in message
    assert "\n" not in message


def test_runpod_mode_needs_a_key(
    persephone_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PERSEPHONE_CATALOG_MODE", "runpod")

    with pytest.raises(SettingsError, match="RUNPOD_API_KEY is not set"):
        load_settings()


def test_secret_values_never_appear_in_errors(
    persephone_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PERSEPHONE_API_KEY", "")

    with pytest.raises(SettingsError) as caught:
        load_settings()

    assert "PERSEPHONE_API_KEY is set but empty" in str(caught.value)


def test_defaults_are_mock_mode_and_sqlite_under_data(
    persephone_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PERSEPHONE_DB_URL")

    settings = load_settings()

    assert settings.catalog_mode == "mock"
    assert settings.request_timeout_s == 900
    assert settings.image_agent == "registry/persephone-agent:0.1"
    assert settings.database_url == f"sqlite:///{persephone_env / 'persephone.db'}"


def test_server_refuses_to_start_with_one_sentence(tmp_path: Path) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "PERSEPHONE_DATA_DIR": str(tmp_path),
        "PERSEPHONE_REQUEST_TIMEOUT_S": "ten",
    }

    completed = subprocess.run(
        [sys.executable, "-c", "import server"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert completed.returncode == 2
    assert completed.stderr.strip() == (
        "Persephone cannot start: PERSEPHONE_REQUEST_TIMEOUT_S='ten' is not valid: "
        "set it to a number of seconds above 0, e.g. 900."
    )
    assert "Traceback" not in completed.stderr


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("PERSEPHONE_DB_URL", "garbage", "is not a database URL SQLAlchemy"),
        ("PERSEPHONE_DB_URL", "sqlite:///", "in-memory SQLite database"),
        (
            "PERSEPHONE_DB_URL",
            "mysql://user:hunter2@127.0.0.1/db",
            "needs the database driver 'MySQLdb'",
        ),
        ("PERSEPHONE_DATA_DIR", "/dev/null", "PERSEPHONE_DATA_DIR='/dev/null' is not"),
        ("PERSEPHONE_DATA_DIR", "", "PERSEPHONE_DATA_DIR='' is not valid"),
        ("PERSEPHONE_SECRET_KEY", "short", "at least 32 random characters"),
        ("PERSEPHONE_API_KEY", "   ", "PERSEPHONE_API_KEY is set but empty"),
    ],
)
def test_preflight_stops_with_one_sentence(
    persephone_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    variable: str,
    value: str,
    expected: str,
) -> None:
    from app import context, preflight

    monkeypatch.setenv(variable, value)
    context.reset()

    assert preflight.main() == 2

    message = capsys.readouterr().err
    assert message.startswith("Persephone cannot start: ")
    assert expected in message
    assert message.count("\n") == 1
    assert "hunter2" not in message
    assert "Traceback" not in message
