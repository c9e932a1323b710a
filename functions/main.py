"""Cloud Function entry points: imports and re-exports only; nothing runs at import."""

from deepflix.entrypoints.cloud_functions import (
    api,
    images_requested,
    story_requested,
    tasks,
    video_requested,
)

__all__ = ["api", "images_requested", "story_requested", "tasks", "video_requested"]
