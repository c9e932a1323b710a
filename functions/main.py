"""Cloud Function entry points: imports and re-exports only; nothing runs at import."""

from deepflix.handlers.functions import api

__all__ = ["api"]
