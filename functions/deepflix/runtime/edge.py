"""What stands at the service's edges, built from settings: who may call the internal endpoints."""

from __future__ import annotations

from deepflix import logs
from deepflix.handlers.internal_auth import InternalCallers
from deepflix.settings import Settings

log = logs.get("runtime")


def internal_callers(settings: Settings) -> InternalCallers | None:
    """The check of /dispatch, /deadlines, /sweep and the pushes; None where no caller is
    configured, which only a run outside production can be (Settings refuses it there)."""
    if not settings.internal_callers:
        if settings.backend == "gcp":
            log.warning("DEEPFLIX_INTERNAL_CALLERS is empty: internal endpoints check no token")
        return None
    from deepflix.adapters.gcp.factory import internal_verifier

    return InternalCallers.of(
        internal_verifier(settings),
        audiences=settings.audiences(),
        allowed=settings.internal_callers,
    )
