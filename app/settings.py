"""One settings object, read from the environment once at start-up.

A bad value stops start-up with one sentence that names the variable and the
fix (`SettingsError`); the secret values are never part of that sentence.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = PROJECT_ROOT / "data"


class SettingsError(ValueError):
    """A configuration value is wrong; the message says which and how to fix it."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="",
        case_sensitive=False,
        extra="ignore",
        populate_by_name=True,
    )

    api_key: SecretStr | None = Field(default=None, alias="PERSEPHONE_API_KEY")
    catalog_mode: Literal["mock", "runpod"] = Field(
        default="mock", alias="PERSEPHONE_CATALOG_MODE"
    )
    runpod_api_key: SecretStr | None = Field(default=None, alias="RUNPOD_API_KEY")
    image_agent: str = Field(
        default="registry/persephone-agent:0.1", alias="PERSEPHONE_IMAGE_AGENT"
    )
    request_timeout_s: float = Field(
        default=900, alias="PERSEPHONE_REQUEST_TIMEOUT_S", gt=0, le=7 * 24 * 3600
    )
    data_dir: Path = Field(default=DEFAULT_DATA_DIR, alias="PERSEPHONE_DATA_DIR")
    db_url: str | None = Field(default=None, alias="PERSEPHONE_DB_URL")
    # Pods this installation creates are named "<prefix>-<run id>"; the reaper
    # only ever touches pods that carry this prefix.
    pod_name_prefix: str = Field(
        default="persephone",
        alias="PERSEPHONE_POD_PREFIX",
        pattern=r"^[a-z0-9-]{1,24}$",
    )
    runpod_api_base_url: str = Field(
        default="https://api.runpod.io", alias="RUNPOD_API_BASE_URL"
    )
    runpod_proxy_url: str = Field(
        default="https://{pod_id}-{port}.proxy.runpod.net",
        alias="PERSEPHONE_RUNPOD_PROXY_URL",
    )
    runpod_cloud: Literal["SECURE", "COMMUNITY"] = Field(
        default="SECURE", alias="PERSEPHONE_RUNPOD_CLOUD"
    )
    sample_hz: float = Field(default=1.0, alias="PERSEPHONE_SAMPLE_HZ", ge=0.5, le=10)
    # Used to derive each run's agent token; generated into the data folder
    # when unset, so tokens never need to be stored.
    secret_key: SecretStr | None = Field(default=None, alias="PERSEPHONE_SECRET_KEY")

    @field_validator("runpod_proxy_url")
    @classmethod
    def _proxy_has_placeholders(cls, value: str) -> str:
        if "{pod_id}" not in value or "{port}" not in value:
            raise ValueError("must contain {pod_id} and {port}")
        return value

    @field_validator("runpod_api_base_url")
    @classmethod
    def _base_is_http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("data_dir", mode="before")
    @classmethod
    def _data_dir_named(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            raise ValueError("must name a folder")
        return value

    @field_validator("secret_key")
    @classmethod
    def _secret_is_long(cls, value: SecretStr | None) -> SecretStr | None:
        # A short secret makes every agent token guessable from its run id.
        if value is not None and len(value.get_secret_value().strip()) < 32:
            raise ValueError("must be at least 32 characters")
        return value

    @property
    def database_url(self) -> str:
        if self.db_url:
            return self.db_url
        return f"sqlite:///{self.data_dir / 'persephone.db'}"


_FIXES = {
    "PERSEPHONE_CATALOG_MODE": "set it to 'mock' or 'runpod'",
    "PERSEPHONE_REQUEST_TIMEOUT_S": "set it to a number of seconds above 0, e.g. 900",
    "PERSEPHONE_SAMPLE_HZ": "set it to a rate from 0.5 to 10, e.g. 1",
    "PERSEPHONE_RUNPOD_PROXY_URL": (
        "use a template with {pod_id} and {port}, e.g. "
        "https://{pod_id}-{port}.proxy.runpod.net"
    ),
    "RUNPOD_API_BASE_URL": "use an http(s) URL such as https://api.runpod.io",
    "PERSEPHONE_POD_PREFIX": "use 1 to 24 lowercase letters, digits or dashes",
    "PERSEPHONE_RUNPOD_CLOUD": "set it to SECURE or COMMUNITY",
    "PERSEPHONE_DATA_DIR": "set it to a folder path, e.g. ./data",
    "PERSEPHONE_SECRET_KEY": (
        "use at least 32 random characters (python -c 'import secrets; "
        "print(secrets.token_hex(32))'), or unset it to have one generated"
    ),
}
_SECRET_VARIABLES = {"PERSEPHONE_API_KEY", "RUNPOD_API_KEY", "PERSEPHONE_SECRET_KEY"}


def _explain(error: ValidationError) -> str:
    first = error.errors()[0]
    variable = str(first["loc"][0]).upper() if first["loc"] else "configuration"
    fix = _FIXES.get(variable, "correct it or unset it to use the default")
    if variable in _SECRET_VARIABLES:
        return f"{variable} is not valid: {fix}."
    return f"{variable}={first.get('input')!r} is not valid: {fix}."


def load_settings() -> Settings:
    """Read and check the environment; raise `SettingsError` with one sentence."""
    try:
        settings = Settings()
    except ValidationError as error:
        raise SettingsError(_explain(error)) from None
    if settings.catalog_mode == "runpod" and not settings.runpod_api_key:
        raise SettingsError(
            "RUNPOD_API_KEY is not set: runpod mode needs a RunPod API key "
            "(export RUNPOD_API_KEY=...), or set PERSEPHONE_CATALOG_MODE=mock."
        )
    if settings.api_key is not None and not settings.api_key.get_secret_value().strip():
        raise SettingsError(
            "PERSEPHONE_API_KEY is set but empty: give it a value, or unset it "
            "for local single-user mode."
        )
    _check_data_dir(settings.data_dir)
    return settings


def _check_data_dir(path: Path) -> None:
    if path.exists() and not path.is_dir():
        raise SettingsError(
            f"PERSEPHONE_DATA_DIR={str(path)!r} is not a folder: point it at a "
            f"folder Persephone may write to, e.g. ./data."
        )
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise SettingsError(
            f"PERSEPHONE_DATA_DIR={str(path)!r} cannot be created "
            f"({error.strerror}): point it at a folder Persephone may write to."
        ) from None


@functools.cache
def get_settings() -> Settings:
    return load_settings()
