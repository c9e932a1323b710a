"""Example requests and answers for the API's OpenAPI document; a test checks each one."""

from __future__ import annotations

from pydantic import JsonValue

MOVIE_ID = "3f2b8c1e9a7d4e6f8b0c2d4e6f8a0b1c"
LINKS: dict[str, JsonValue] = {
    "self": f"/api/movies/{MOVIE_ID}",
    "status": f"/api/movies/{MOVIE_ID}/status",
    "position": f"/api/queue/{MOVIE_ID}/position",
    "cancel": f"/api/movies/{MOVIE_ID}/cancel",
    "retry": f"/api/movies/{MOVIE_ID}/retry",
}
POSITION: dict[str, JsonValue] = {
    "queue": "images",
    "position": 3,
    "ahead": 2,
    "total_waiting": 5,
    "running": 2,
    "eta_seconds": 14.5,
}
# A movie waiting for images, behind two running and two waiting, then the video queue.
ETA: dict[str, JsonValue] = {
    "eta_start_seconds": 9.8,
    "eta_finish_seconds": 41.3,
    "eta": {
        "start_seconds": 9.8,
        "start_low_seconds": 7.1,
        "start_high_seconds": 14.0,
        "finish_seconds": 41.3,
        "finish_low_seconds": 30.2,
        "finish_high_seconds": 58.6,
        "unknown": None,
    },
}
# Submitted while admission is paused: no estimate until it resumes.
ETA_PAUSED: dict[str, JsonValue] = {
    "eta_start_seconds": None,
    "eta_finish_seconds": None,
    "eta": {
        "start_seconds": None,
        "start_low_seconds": None,
        "start_high_seconds": None,
        "finish_seconds": None,
        "finish_low_seconds": None,
        "finish_high_seconds": None,
        "unknown": "admission_paused",
    },
}
NO_ETA: dict[str, JsonValue] = {"eta_start_seconds": None, "eta_finish_seconds": None, "eta": None}
CREATE_REQUESTS: dict[str, dict[str, JsonValue]] = {
    "minimal": {"prompt": "A lighthouse keeper befriends a storm"},
    "everything": {
        "prompt": "A lighthouse keeper befriends a storm",
        "title": "Keeper",
        "style": "noir",
        "scene_count": 4,
        "priority": "high",
        "seed": 42,
    },
}

MOVIE_VIEW: list[dict[str, JsonValue]] = [
    {
        "movie_id": MOVIE_ID,
        "job_id": MOVIE_ID,
        "status": "images",
        "current_stage": "images",
        "priority": "normal",
        "request": {
            "prompt": "A lighthouse keeper befriends a storm",
            "title": None,
            "style": "cinematic",
            "scene_count": 6,
            "priority": "normal",
            "seed": None,
        },
        "created_at": "2026-11-29T12:00:00+00:00",
        "updated_at": "2026-11-29T12:00:02.500000+00:00",
        "finished_at": None,
        "stages": {
            "story": {
                "status": "succeeded",
                "attempts": 1,
                "attempt": 1,
                "progress": 100,
                "started_at": "2026-11-29T12:00:00.100000+00:00",
                "finished_at": "2026-11-29T12:00:00.400000+00:00",
                "duration_seconds": 0.3,
                "ready_at": "2026-11-29T12:00:00+00:00",
                "last_error": None,
            },
            "images": {
                "status": "waiting",
                "attempts": 0,
                "attempt": 0,
                "progress": 0,
                "started_at": None,
                "finished_at": None,
                "duration_seconds": None,
                "ready_at": "2026-11-29T12:00:00.400000+00:00",
                "last_error": None,
            },
            "video": {
                "status": "pending",
                "attempts": 0,
                "attempt": 0,
                "progress": 0,
                "started_at": None,
                "finished_at": None,
                "duration_seconds": None,
                "ready_at": None,
                "last_error": None,
            },
        },
        "artifacts": {
            "story": f"/api/movies/{MOVIE_ID}/artifacts/story.json",
            "images": [],
            "video": None,
            "poster": None,
            "captions": None,
        },
        "position": POSITION,
        "eta_seconds": 14.5,
        **ETA,
        "error": None,
        "links": LINKS,
    }
]

CREATED: list[dict[str, JsonValue]] = [
    {
        "movie_id": MOVIE_ID,
        "job_id": MOVIE_ID,
        "status": "queued",
        "position": 4,
        "ahead": 3,
        "eta_seconds": 21.0,
        **ETA,
        "admission_paused": False,
        "longest_wait": {"queue": "video", "ahead": 11, "wait_seconds": 33.0},
        "links": LINKS,
    },
    {
        "movie_id": MOVIE_ID,
        "job_id": MOVIE_ID,
        "status": "queued",
        "position": 1,
        "ahead": 0,
        "eta_seconds": None,
        **ETA_PAUSED,
        "admission_paused": True,
        "longest_wait": None,
        "links": LINKS,
    },
]

JOB_POSITIONS: list[dict[str, JsonValue]] = [
    {
        "job_id": MOVIE_ID,
        "status": "images",
        "current_stage": "images",
        "waiting": True,
        **POSITION,
        **ETA,
    },
    {
        "job_id": MOVIE_ID,
        "status": "succeeded",
        "current_stage": None,
        "waiting": False,
        "position": None,
        "ahead": None,
        "eta_seconds": None,
        **NO_ETA,
    },
]

MOVIE_LIST: list[dict[str, JsonValue]] = [
    {
        "movies": [
            {
                "movie_id": MOVIE_ID,
                "status": "queued",
                "current_stage": "story",
                "priority": "high",
                "prompt": "A lighthouse keeper befriends a storm",
                "title": "Keeper",
                "created_at": "2026-11-29T12:00:00+00:00",
                "links": LINKS,
            }
        ],
        "next_cursor": None,
    }
]

QUEUES: list[dict[str, JsonValue]] = [
    {
        "admission_paused": False,
        "queues": {
            "story": {
                "waiting": 12,
                "running": 4,
                "concurrency": 4,
                "mean_duration_seconds": 0.3,
            },
            "images": {
                "waiting": 3,
                "running": 2,
                "concurrency": 2,
                "mean_duration_seconds": 2.8,
            },
            "video": {
                "waiting": 1,
                "running": 1,
                "concurrency": 1,
                "mean_duration_seconds": None,
            },
        },
        "dead_letters": 0,
    }
]

HEALTH: list[dict[str, JsonValue]] = [
    {"status": "ok", "admission_paused": False, "queues": {"story": 12, "images": 3, "video": 1}}
]

ERROR: list[dict[str, JsonValue]] = [
    {
        "error": {
            "code": "validation_failed",
            "message": "the request body is not a valid movie request",
            "details": [
                {
                    "field": "scene_count",
                    "message": "Input should be less than or equal to 24",
                    "type": "less_than_equal",
                }
            ],
        }
    }
]
