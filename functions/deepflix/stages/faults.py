"""Fault injection for chaos tests and drills: a JSON file that makes chosen stages fail."""

from __future__ import annotations

import json
import time
from pathlib import Path

from deepflix.pipeline.errors import PermanentStageError, RetryableStageError
from deepflix.pipeline.models import Movie, Stage

KINDS = ("retryable", "permanent", "delay")


class FaultPlan:
    """Reads `{"images": {"kind": "retryable", "match": "text in the prompt"}}` at each use.

    Kinds: "retryable" and "permanent" raise the matching stage error; "delay" sleeps
    `seconds` before the work (a slow GPU, a stuck job). Given the attempt's `deadline`
    (work on the service's own threads), a delay past it ends there as a timeout: a thread
    cannot be stopped, so a hang it stands for must not outlive its attempt.

    Read on every check so a running service (and its job subprocesses) pick up a change
    without restarting; absent file means no faults. `match` limits the fault to movies
    whose prompt contains it.
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path

    def validate(self) -> None:
        """Raise ValueError, saying what is wrong, if the file is not a plan: checked at
        start, so a typo stops the service in one line instead of failing every movie."""
        if self.path is None or not self.path.exists():
            return
        try:
            rules = json.loads(self.path.read_text() or "{}")
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ValueError(f"not readable JSON: {e}") from None
        if not isinstance(rules, dict):
            raise ValueError("must be a JSON object of stage name to rule")
        for name, rule in rules.items():
            if name not in {s.value for s in Stage}:
                raise ValueError(f"{name!r} is not a stage (story, images, video)")
            if not isinstance(rule, dict):
                raise ValueError(f"the rule for {name} must be an object")
            kind = rule.get("kind", "retryable")
            if kind not in KINDS:
                raise ValueError(f"{name}: kind {kind!r} is not one of {', '.join(KINDS)}")
            if not isinstance(rule.get("match", ""), str):
                raise ValueError(f"{name}: match must be text")
            seconds = rule.get("seconds", 1)
            if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
                raise ValueError(f"{name}: seconds must be a number of seconds")

    def check(self, stage: Stage, movie: Movie, *, deadline: float | None = None) -> None:
        """Apply the stage's rule, if any; `deadline` is on time.monotonic()'s clock."""
        if self.path is None or not self.path.exists():
            return
        rules = json.loads(self.path.read_text() or "{}")
        rule = rules.get(stage.value)
        if not rule or rule.get("match", "") not in movie.request.prompt:
            return
        if rule.get("kind") == "delay":
            seconds = float(rule.get("seconds", 1))
            if deadline is None or time.monotonic() + seconds < deadline:
                time.sleep(seconds)
                return
            time.sleep(max(0.0, deadline - time.monotonic()))
            raise RetryableStageError(
                f"{stage.value} did not finish by its deadline (an injected {seconds:g}s delay)",
                code="timeout",
            )
        message = f"injected {rule.get('kind', 'retryable')} fault in {stage.value}"
        if rule.get("kind") == "permanent":
            raise PermanentStageError(message, code="injected_fault")
        raise RetryableStageError(message, code="injected_fault")
