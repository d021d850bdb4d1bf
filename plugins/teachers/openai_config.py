"""The ``openai`` teacher's config and registration (any OpenAI-compatible server).

Kept apart from the client (``openai_teacher``), which is imported only when a run builds the
teacher, so every other command starts without an HTTP stack.
"""

from __future__ import annotations

import re
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import ConfigDict, Field, field_validator, model_validator

from distilforge.engine.api import ComponentConfig, Register, hookimpl
from distilforge.engine.api.toolkit import lazy_factory

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
RETRYABLE_STATUS = frozenset({408, 409, 425, 500, 502, 503, 504})


class OpenAITeacherConfig(ComponentConfig):
    # hide_input_in_errors: a key pasted into the wrong field must not be echoed by a
    # validation error (which ends up in logs and tracebacks).
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    type: Literal["openai"] = "openai"
    base_url: str = Field("http://127.0.0.1:8000/v1", description="server URL including /v1")
    model: str = Field(..., min_length=1, description="model name as the server knows it")
    api_key_env: str | None = Field(
        "OPENAI_API_KEY",
        pattern=_ENV_NAME.pattern,
        description="name of the environment variable holding the API key (unset is fine locally)",
    )
    concurrency: int = Field(
        64,
        ge=1,
        le=4096,
        description="requests in flight at most; a local vLLM batches them all, hosted APIs may want less",
    )
    timeout_s: float = Field(300.0, gt=0, description="total time allowed for one HTTP request")
    connect_timeout_s: float = Field(10.0, gt=0)
    max_retries: int = Field(4, ge=0, description="retries after timeouts, 5xx, bad JSON (not 429)")
    backoff_base_s: float = Field(0.5, ge=0)
    backoff_max_s: float = Field(30.0, ge=0)
    max_rate_limit_retries: int = Field(
        30,
        ge=0,
        description="429 answers tolerated per call before it fails (each cools down all workers)",
    )
    retry_after_max_s: float = Field(300.0, ge=0, description="cap on a server's Retry-After")
    n_mode: Literal["server", "fan_out"] = Field(
        "server", description="send n to the server, or make n requests of one sample each"
    )
    choice_param: Literal["structured_outputs", "guided_choice"] = "structured_outputs"
    extra_body: dict[str, Any] = Field(
        default_factory=dict,
        description="extra fields merged into every request body (e.g. top_k); dicts merge one"
        " level deep, the request's own constraints winning",
    )

    @model_validator(mode="before")
    @classmethod
    def _redact_suspect_input(cls, data: Any) -> Any:
        """Replace values that may be secrets before validation can echo them in an error.

        ``hide_input_in_errors`` only applies when this model is validated on its own, not as a
        field of the run config, so a key written as ``api_key: sk-...`` (an unknown field), into
        ``api_key_env``, or into ``base_url`` is swapped for a placeholder here; validation then
        fails with the placeholder as its input.
        """
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for key in list(data):
            if key not in cls.model_fields:
                data[key] = "<redacted>"
        env = data.get("api_key_env")
        if isinstance(env, str) and not _ENV_NAME.fullmatch(env):
            data["api_key_env"] = "<redacted: not an environment variable name>"
        url = data.get("base_url")
        if isinstance(url, str):
            try:
                parsed = urlsplit(url)
                suspect = bool("@" in parsed.netloc or parsed.query)
            except ValueError:
                suspect = True
            if suspect:
                data["base_url"] = "<redacted URL>"
        return data

    @field_validator("base_url")
    @classmethod
    def _no_credentials_in_url(cls, value: str) -> str:
        if value.startswith("<redacted"):
            raise ValueError("base_url must not carry credentials or a query; use api_key_env")
        try:
            url = urlsplit(value)
            host = url.hostname
        except ValueError:
            host = None
        if host is None or url.scheme not in ("http", "https"):
            raise ValueError("base_url must be an http(s) URL such as http://127.0.0.1:8000/v1")
        if "@" in url.netloc or url.query:
            raise ValueError("base_url must not carry credentials or a query; use api_key_env")
        return value.rstrip("/")


@hookimpl
def register_teachers(register: Register) -> None:
    register(OpenAITeacherConfig, lazy_factory("distilforge.plugins.teachers.openai_teacher:OpenAITeacher"))
