"""Vendor specifications: the data in vendors.toml, validated once."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from importlib import resources
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kanjia.errors import ConfigError

ErrorClass = Literal["rate_limited", "balance", "auth", "overloaded", "timeout", "context",
                     "content_filter", "bad_request", "server"]


class VendorSpec(BaseModel):
    """One vendor: where it lives, how it authenticates, and its quirks."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    kind: Literal["openai", "anthropic", "gemini", "azure", "bedrock"]
    #: may hold ``{region}`` (Bedrock), filled from the deployment's region
    base_url: str
    key_env: tuple[str, ...] = ()
    base_url_env: str | None = None
    auth: Literal["bearer", "none", "x-api-key", "x-goog-api-key", "api-key", "sigv4"] = "bearer"
    #: secret parts beyond the key (SigV4's secret access key and session token), by the
    #: name the adapter reads them under -> the environment variable holding each
    secret_env: Mapping[str, str] = Field(default_factory=dict)
    #: the API version sent when a deployment names none (Azure's ``api-version``), and
    #: the environment variable that overrides it
    api_version: str | None = None
    api_version_env: str | None = None
    #: environment variables naming the region, first set wins (Bedrock: AWS_REGION)
    region_env: tuple[str, ...] = ()
    default_region: str | None = None
    region: Literal["cn", "global", "self-hosted"]
    supports_n: bool = False
    stream_usage: Literal["option", "always"] = "option"
    renames: Mapping[str, str] = Field(default_factory=dict)
    drop: tuple[str, ...] = ()
    headers: Mapping[str, str] = Field(default_factory=dict)
    header_env: Mapping[str, str] = Field(default_factory=dict)
    errors: Mapping[str, ErrorClass] = Field(default_factory=dict)
    body_errors: bool = False
    #: vendor finish_reason values that mean an OpenAI one (Hunyuan's "sensitive")
    finish_reasons: Mapping[str, str] = Field(default_factory=dict)
    #: the vendor takes Anthropic-style ``cache_control`` marks in OpenAI messages and
    #: bills them at prices the catalog models; otherwise they are removed before sending
    cache_control: bool = False
    #: prepended on the wire to model ids without a "/" (Fireworks' catalog names
    #: ``deepseek-v3-0324``, its API ``accounts/fireworks/models/deepseek-v3-0324``)
    model_prefix: str | None = None
    #: the vendor serves OpenAI's Responses API (``POST {base_url}/responses``): a
    #: ``/v1/responses`` request is passed through to it instead of translated
    responses: bool = False

    def wire_model(self, model: str) -> str:
        """The model id as the vendor's API takes it."""
        return f"{self.model_prefix}{model}" if self.model_prefix and "/" not in model \
            else model


def load_vendor_specs(text: str | None = None) -> dict[str, VendorSpec]:
    """Parse vendors.toml (the packaged one unless ``text`` is given)."""
    if text is None:
        text = resources.files("kanjia.vendors").joinpath("vendors.toml").read_text("utf-8")
    raw = tomllib.loads(text).get("vendors", {})
    specs: dict[str, VendorSpec] = {}
    for vid, table in raw.items():
        try:
            specs[vid] = VendorSpec.model_validate({"id": vid, **table})
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ConfigError(f"vendors.toml: vendor {vid!r}, field {where!r}: {first['msg']}")\
                from None
    return specs
