"""Which models this gateway can reach, where, and under what names.

Built once at start-up from settings, the price catalog, the vendor specs and
the environment (for keys). ``vendor/model`` always resolves for an enabled
vendor, bare names where unambiguous, and configured aliases.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kanjia.catalog import Catalog, ModelEntry
from kanjia.config import DeploymentSettings, Settings, VendorSettings
from kanjia.errors import ConfigError, ModelNotFound
from kanjia.vendors import Adapter, Deployment, VendorSpec, adapter_for

__all__ = ["ModelDirectory", "Target"]

SANDBOX_KEY = "sandbox-key"


@dataclass(frozen=True, slots=True)
class Target:
    """One model at one vendor, with every deployment that serves it."""

    key: str
    vendor: str
    model: str
    entry: ModelEntry | None
    adapter: Adapter
    deployments: tuple[Deployment, ...]


class ModelDirectory:
    def __init__(self, settings: Settings, catalog: Catalog, specs: Mapping[str, VendorSpec],
                 env: Mapping[str, str]) -> None:
        self.catalog = catalog
        self.specs = dict(specs)
        unknown = set(settings.vendors) - set(specs)
        if unknown:
            raise ConfigError(f"config: unknown vendor(s) {sorted(unknown)}; "
                              f"known: {sorted(specs)}")
        self.adapters: dict[str, Adapter] = {}
        self.deployments: dict[str, tuple[Deployment, ...]] = {}
        self.disabled_reason: dict[str, str] = {}
        for vid, spec in specs.items():
            deps = _deployments(spec, settings.vendors.get(vid, VendorSettings()),
                                settings.sandbox_url, env)
            if isinstance(deps, str):
                self.disabled_reason[vid] = deps
                continue
            self.adapters[vid] = adapter_for(spec)
            self.deployments[vid] = deps
        self._targets: dict[str, Target] = {}
        self._bare: dict[str, list[str]] = {}
        for entry in catalog.models:
            if entry.vendor in self.deployments:
                self._add(entry.vendor, entry.model, entry)
                for alias in entry.aliases:
                    self._bare.setdefault(alias, [])
                    if entry.key not in self._bare[alias]:
                        self._bare[alias].append(entry.key)
        for vid, vs in settings.vendors.items():
            if vid in self.deployments:
                for model in vs.models:
                    self._add(vid, model, catalog.get(vid, model))
        self.aliases = dict(settings.aliases)

    def _add(self, vendor: str, model: str, entry: ModelEntry | None) -> Target:
        key = f"{vendor}/{model}"
        target = self._targets.get(key)
        if target is None:
            target = Target(key, vendor, model, entry, self.adapters[vendor],
                            self.deployments[vendor])
            self._targets[key] = target
            bucket = self._bare.setdefault(model, [])
            if key not in bucket:
                bucket.append(key)
        return target

    @property
    def targets(self) -> tuple[Target, ...]:
        return tuple(self._targets.values())

    def enabled_vendors(self) -> tuple[str, ...]:
        return tuple(self.deployments)

    def resolve(self, name: str) -> Target:
        """Resolve a client's model name to one target, or raise ModelNotFound."""
        target = self._targets.get(name)
        if target is not None:
            return target
        alias = self.aliases.get(name)
        if alias is not None and alias != name:
            return self.resolve(alias)
        vendor, sep, model = name.partition("/")
        if sep and vendor in self.specs:
            if vendor not in self.deployments:
                raise ModelNotFound(f"vendor {vendor!r} is not enabled: "
                                    f"{self.disabled_reason.get(vendor, 'not configured')}")
            if not model:
                raise ModelNotFound(f"model name {name!r} has no model after the vendor")
            # a model the catalog does not know yet still passes through, unpriced; it is
            # not remembered (client-chosen names must not grow the directory)
            entry = self.catalog.get(vendor, model)
            if entry is not None:
                return self._add(vendor, model, entry)
            return Target(name, vendor, model, None, self.adapters[vendor],
                          self.deployments[vendor])
        keys = self._bare.get(name, [])
        if len(keys) == 1:
            return self._targets[keys[0]]
        if len(keys) > 1:
            raise ModelNotFound(f"model {name!r} is ambiguous; use one of: {', '.join(keys)}")
        raise ModelNotFound(f"model {name!r} is not available through this gateway; "
                            "GET /v1/models lists the models, or use vendor/model")


def _deployments(spec: VendorSpec, vs: VendorSettings, sandbox_url: str | None,
                 env: Mapping[str, str]) -> tuple[Deployment, ...] | str:
    """The vendor's deployments, or the reason it is disabled."""
    if vs.enabled is False:
        return "disabled in config"
    if sandbox_url:
        base = f"{sandbox_url.rstrip('/')}/{spec.id}"
        return (Deployment(spec, base, SANDBOX_KEY, "sandbox",
                           secrets={name: SANDBOX_KEY for name in spec.secret_env},
                           region=spec.default_region),)
    default_base = vs.base_url or (env.get(spec.base_url_env) if spec.base_url_env else None) \
        or spec.base_url
    key_envs = (vs.api_key_env,) if vs.api_key_env else spec.key_env
    default_key = next((env[k] for k in key_envs if env.get(k)), None)
    headers = {h: env[var] for h, var in spec.header_env.items() if env.get(var)}
    extra = _extras(spec, env)
    if not default_base and not (vs.deployments and all(d.base_url for d in vs.deployments)):
        return f"set ${spec.base_url_env} or base_url in config"
    if spec.auth == "sigv4" and not default_key and vs.enabled:
        # no keys in the environment: the AWS SDK's credential chain (profile, SSO, role)
        return tuple(Deployment(spec, _base(default_base, d.base_url, d.region, extra), None,
                                d.name, d.weight, headers, **_fields(d, extra))
                     for d in vs.deployments or (DeploymentSettings(),))
    if vs.deployments:
        deps = []
        for d in vs.deployments:
            key = env.get(d.api_key_env) if d.api_key_env else default_key
            if spec.auth != "none" and not key:
                return f"deployment {d.name!r} needs ${d.api_key_env or key_envs[0]}"
            deps.append(Deployment(spec, _base(default_base, d.base_url, d.region, extra), key,
                                   d.name, d.weight, headers, **_fields(d, extra)))
        return tuple(deps)
    if spec.auth == "none":
        explicit = vs.enabled or vs.base_url or (spec.base_url_env and env.get(spec.base_url_env))
        if not explicit:
            return f"self-hosted: set ${spec.base_url_env}, or base_url or enabled in config"
        return (Deployment(spec, default_base.rstrip("/"), default_key, headers=headers),)
    if not default_key:
        return f"set ${' or $'.join(key_envs)}"
    return (Deployment(spec, _base(default_base, None, None, extra), default_key,
                       headers=headers, **_fields(DeploymentSettings(), extra)),)


def _extras(spec: VendorSpec, env: Mapping[str, str]) -> dict[str, Any]:
    """What a vendor reads beyond a key: secret parts, API version, region."""
    secrets = {name: env[var] for name, var in spec.secret_env.items() if env.get(var)}
    version = (env.get(spec.api_version_env) if spec.api_version_env else None) \
        or spec.api_version
    region = next((env[v] for v in spec.region_env if env.get(v)), None) or spec.default_region
    return {"secrets": secrets, "api_version": version, "region": region}


def _fields(d: DeploymentSettings, extra: dict[str, Any]) -> dict[str, Any]:
    return {"secrets": extra["secrets"], "api_version": d.api_version or extra["api_version"],
            "model_deployments": dict(d.model_deployments),
            "region": d.region or extra["region"]}


def _base(default: str, own: str | None, region: str | None, extra: dict[str, Any]) -> str:
    """The deployment's base URL, its ``{region}`` filled in (Bedrock)."""
    base = (own or default).rstrip("/")
    return base.replace("{region}", region or extra["region"] or "") if "{region}" in base \
        else base
