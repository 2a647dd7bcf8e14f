"""Azure OpenAI: deployment URLs, api-version, api-key, model -> deployment, errors."""

from __future__ import annotations

import orjson
import pytest

from kanjia import errors as e
from kanjia.catalog import load_catalog
from kanjia.config import load_settings
from kanjia.errors import ConfigError
from kanjia.routing.directory import ModelDirectory
from kanjia.vendors import Deployment, adapter_for, load_vendor_specs

SPECS = load_vendor_specs()
AZURE = SPECS["azure"]
ENDPOINT = "https://res.openai.azure.com"


def _dep(**kw: object) -> Deployment:
    return Deployment(AZURE, ENDPOINT, "az-secret", **kw)  # type: ignore[arg-type]


def test_deployment_url_api_version_and_api_key() -> None:
    adapter = adapter_for(AZURE)
    dep = _dep(api_version="2024-10-21", model_deployments={"gpt-4o": "prod-4o"})
    req = adapter.chat_request(dep, {"messages": [{"role": "user", "content": "hi"}]},
                               "gpt-4o", stream=True)
    assert req.url == (f"{ENDPOINT}/openai/deployments/prod-4o/chat/completions"
                       "?api-version=2024-10-21")
    assert req.headers["api-key"] == "az-secret"
    assert "Authorization" not in req.headers
    body = orjson.loads(req.body)
    assert body["stream_options"] == {"include_usage": True}
    # an unmapped model is deployed under its own name; the spec's default version
    req = adapter.chat_request(_dep(), {"messages": []}, "o4-mini", stream=False)
    assert req.url == (f"{ENDPOINT}/openai/deployments/o4-mini/chat/completions"
                       f"?api-version={AZURE.api_version}")


def test_v1_api_sends_the_deployment_as_model() -> None:
    adapter = adapter_for(AZURE)
    dep = _dep(api_version="v1", model_deployments={"gpt-4o": "prod-4o"})
    req = adapter.chat_request(dep, {"messages": []}, "gpt-4o", stream=False)
    assert req.url == f"{ENDPOINT}/openai/v1/chat/completions"
    assert orjson.loads(req.body)["model"] == "prod-4o"
    emb = adapter.embeddings_request(dep, {"input": "x"}, "text-embedding-3-small")
    assert emb.url == f"{ENDPOINT}/openai/v1/embeddings"


def test_deployment_names_are_escaped_in_the_path() -> None:
    dep = _dep(api_version="2024-10-21", model_deployments={"m": "a/b?c"})
    req = adapter_for(AZURE).chat_request(dep, {"messages": []}, "m", stream=False)
    assert "/deployments/a%2Fb%3Fc/chat/completions?" in req.url


@pytest.mark.parametrize(("status", "body", "headers", "cls"), [
    (400, {"error": {"code": "content_filter", "param": "prompt", "status": 400,
                     "message": "The response was filtered",
                     "innererror": {"code": "ResponsibleAIPolicyViolation"}}}, {},
     e.ContentFiltered),
    (429, {"error": {"code": "429", "message": "exceeded token rate limit"}},
     {"retry-after": "6"}, e.RateLimited),
    (401, {"error": {"code": "401", "message": "Access denied due to invalid subscription key"}},
     {}, e.VendorAuthFailed),
    (404, {"error": {"code": "DeploymentNotFound",
                     "message": "The API deployment for this resource does not exist."}}, {},
     e.BadRequest),
])
def test_errors(status: int, body: object, headers: dict[str, str],
                cls: type[e.KanjiaError]) -> None:
    err = adapter_for(AZURE).classify_error(status, orjson.dumps(body), headers)
    assert type(err) is cls
    if headers:
        assert err.retry_after == 6.0


def _directory(env: dict[str, str], **vendors: object) -> ModelDirectory:
    settings = load_settings(None, vendors=vendors)
    return ModelDirectory(settings, load_catalog(), SPECS, env)


def test_enabled_by_endpoint_and_key() -> None:
    d = _directory({"AZURE_OPENAI_API_KEY": "k"})
    assert "azure" not in d.enabled_vendors()
    assert "AZURE_OPENAI_ENDPOINT" in d.disabled_reason["azure"]
    d = _directory({"AZURE_OPENAI_API_KEY": "k", "AZURE_OPENAI_ENDPOINT": ENDPOINT + "/",
                    "AZURE_OPENAI_API_VERSION": "2025-04-01-preview"})
    (dep,) = d.deployments["azure"]
    assert dep.base_url == ENDPOINT and dep.api_version == "2025-04-01-preview"


def test_deployments_in_config() -> None:
    d = _directory({"AZURE_OPENAI_API_KEY": "k", "EU_KEY": "k2"}, azure={"deployments": [
        {"name": "us", "base_url": ENDPOINT, "api_version": "v1"},
        {"name": "eu", "base_url": "https://eu.openai.azure.com", "api_key_env": "EU_KEY",
         "api_version": "2024-10-21", "model_deployments": {"gpt-4o": "eu-4o"}}]})
    us, eu = d.deployments["azure"]
    assert us.api_version == "v1" and us.api_key == "k"
    assert eu.deployment_for("gpt-4o") == "eu-4o" and eu.api_key == "k2"


@pytest.mark.parametrize("bad", [{"api_version": "2024 10"},
                                 {"model_deployments": {"gpt-4o": "../x"}},
                                 {"region": "Mars"}])
def test_bad_deployment_settings_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        load_settings(None, vendors={"azure": {"deployments": [{"name": "x", **bad}]}})


@pytest.mark.parametrize("model", ["..", "."])
def test_dot_segments_are_refused(model: str) -> None:
    with pytest.raises(e.BadRequest):
        adapter_for(AZURE).chat_request(_dep(api_version="2024-10-21"), {"messages": []},
                                        model, stream=False)
    with pytest.raises(e.BadRequest):
        adapter_for(SPECS["bedrock"]).chat_request(
            Deployment(SPECS["bedrock"], "https://x", "AK", secrets={"secret_access_key": "s"}),
            {"messages": []}, model, stream=False)
