"""Who the API's callers are in each mode (ADR 0017): Firebase ID tokens on Google Cloud; API
keys embedded, where a loopback address with no key made yet is the one local user."""

from __future__ import annotations

import ipaddress

from deepflix.adapters.local.api_keys import ApiKeys
from deepflix.handlers.identity import Authenticator
from deepflix.pipeline.identity import LOCAL_USER, Principal
from deepflix.runtime.compose import CloudRuntime
from deepflix.runtime.embedded import EmbeddedRuntime
from deepflix.runtime.instance import CannotStart
from deepflix.settings import Settings


def is_loopback(host: str) -> bool:
    """Only programs of this machine can reach an address of this kind."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a name: it may resolve to anything
        return False


def embedded(settings: Settings, keys: ApiKeys) -> Authenticator:
    """API keys; a request without one is the local user (an operator) while the service is
    bound to a loopback address and no key was ever made, and refused (401) otherwise."""
    local = is_loopback(settings.host)

    def anonymous() -> Principal | None:
        return LOCAL_USER if local and not keys.exist() else None

    return Authenticator([keys], anonymous)


def cloud(settings: Settings) -> Authenticator:
    """Firebase Authentication ID tokens of the project; nothing without one."""
    from deepflix.adapters.gcp.firebase_auth import FirebaseTokens

    return Authenticator([FirebaseTokens(settings.gcp_project)])


def of_service(settings: Settings, service: EmbeddedRuntime | CloudRuntime) -> Authenticator:
    """The Cloud Function's: Firebase on Google Cloud; on the embedded adapters (tests, a
    local functions-framework), the embedded rule on that database's keys."""
    if isinstance(service, EmbeddedRuntime):
        return embedded(settings, ApiKeys(service.store.db))
    return cloud(settings)


def refuse_open_without_keys(settings: Settings, keys: ApiKeys) -> None:
    """Bound where other machines reach it, with no API key, every caller would be anonymous
    and the local user an operator: refuse to start, in one line naming the setting."""
    if is_loopback(settings.host) or keys.exist():
        return
    raise CannotStart(
        f"DEEPFLIX_HOST={settings.host} is reachable from other machines and no API key "
        "exists: create one first (deepflix keys create --name NAME --owner OWNER --admin) "
        "or set DEEPFLIX_HOST=127.0.0.1"
    )
