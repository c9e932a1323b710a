"""The state machine as data: the transition table and one pure apply() of an event."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from deepflix.pipeline.events import (
    CancelExecution,
    CancelRequested,
    CheckDeadline,
    Claimed,
    Command,
    Dispatch,
    Event,
    JobStarted,
    JobStartFailed,
    JobStarting,
    Progressed,
    RetryRequested,
    RunStage,
    StageFailed,
    StageNoted,
    StageSucceeded,
)
from deepflix.pipeline.models import (
    STAGES,
    Movie,
    MovieStatus,
    Stage,
    StageError,
    StageState,
    StageStatus,
)
from deepflix.pipeline.outbox import outgoing, received
from deepflix.pipeline.policy import PipelineConfig

# Which movie statuses may follow which. A stage's own status may repeat (a retry backs off
# and waits in the same stage), hence the self-loops.
TRANSITIONS: dict[MovieStatus, frozenset[MovieStatus]] = {
    MovieStatus.queued: frozenset({MovieStatus.story, MovieStatus.cancelled}),
    MovieStatus.story: frozenset(
        {MovieStatus.story, MovieStatus.images, MovieStatus.failed, MovieStatus.cancelled}
    ),
    MovieStatus.images: frozenset(
        {MovieStatus.images, MovieStatus.video, MovieStatus.failed, MovieStatus.cancelled}
    ),
    MovieStatus.video: frozenset(
        {MovieStatus.video, MovieStatus.succeeded, MovieStatus.failed, MovieStatus.cancelled}
    ),
    MovieStatus.succeeded: frozenset(),
    # Only by an explicit retry, back to the stage that failed.
    MovieStatus.failed: frozenset({MovieStatus.queued, MovieStatus.images, MovieStatus.video}),
    # Only by an explicit retry too, back to the stage it was cancelled in.
    MovieStatus.cancelled: frozenset({MovieStatus.queued, MovieStatus.images, MovieStatus.video}),
}
# How long a claimed job start keeps other deliveries of the stage request from starting one.
# Past it, a start whose starter died before recording an execution may be claimed again.
JOB_START_HOLD_S = 60.0
# The movie's status while a stage is its current one (waiting or running there).
STAGE_TO_MOVIE_STATUS: dict[Stage, MovieStatus] = {
    Stage.story: MovieStatus.story,
    Stage.images: MovieStatus.images,
    Stage.video: MovieStatus.video,
}


@dataclass(frozen=True)
class Decision:
    """What apply() made of an event: the movie as it is now and the commands to perform
    once it is saved; applied=False (with the reason) when the event changed nothing.

    The messages among an applied decision's commands are in the movie's outbox too, so
    they are saved with it and sent until sent (pipeline/outbox.py); a claim's deadline
    check is only performed once saved, as the sweep enforces deadlines anyway (ADR 0030).
    Those of a decision that changed nothing (a stray execution to stop) are only performed.
    """

    movie: Movie
    commands: tuple[Command, ...] = ()
    applied: bool = True
    reason: str = ""


class InvalidTransition(Exception):
    """A bug: apply() tried to move a movie along an edge the table does not have."""


def apply(movie: Movie, event: Event, config: PipelineConfig) -> Decision:
    """Apply one event; stale or repeated events are no-ops (at-least-once delivery)."""
    result = _apply(movie, event, config)
    moved = result.applied and result.movie.status is not movie.status
    if moved and result.movie.status not in TRANSITIONS[movie.status]:
        raise InvalidTransition(f"{movie.status.value} -> {result.movie.status.value}")
    if not result.applied:
        return result
    kept = received(result.movie, event)
    inline = frozenset(s for s in STAGES if not config[s].runs_as_job)
    messages = outgoing(result.commands, event.at, inline)
    if messages or kept != result.movie.outbox:
        outbox = (*kept, *messages)
        result = Decision(result.movie.model_copy(update={"outbox": outbox}), result.commands)
    return result


_HOLD = timedelta(seconds=JOB_START_HOLD_S)


def _skip(movie: Movie, reason: str, *commands: Command) -> Decision:
    return Decision(movie, commands, applied=False, reason=reason)


def _apply(movie: Movie, event: Event, config: PipelineConfig) -> Decision:
    if isinstance(event, CancelRequested):
        return _cancel(movie, event.at)
    if isinstance(event, RetryRequested):
        return _retry(movie, event.at)
    if isinstance(event, Claimed):
        return _claim(movie, event, config)

    st = movie.stages[event.stage]
    if isinstance(event, StageNoted):
        return _note(movie, event)
    current = st.status is StageStatus.running and st.attempts == event.attempt
    if not current:
        # A late job report for an attempt we gave up on: make sure its execution stops.
        if isinstance(event, JobStarted):
            return _skip(movie, "attempt is not running", CancelExecution(event.execution))
        return _skip(movie, "attempt is not running")

    if isinstance(event, JobStarting):
        if st.execution is not None:
            return _skip(movie, "the attempt's job has started")
        held = st.starting_at is not None and event.at - st.starting_at < _HOLD
        if held:
            return _skip(movie, "the attempt's job is being started")
        return _update(
            movie, event.stage, event.at, starting_at=event.at, execution=event.execution
        )
    if isinstance(event, JobStartFailed):
        if st.starting_at != event.since:
            return _skip(movie, "not this start's claim")
        return _update(movie, event.stage, event.at, starting_at=None, execution=None)
    if isinstance(event, JobStarted):
        if st.execution == event.execution:
            return _skip(movie, "execution already recorded")
        if st.execution is not None:
            # One execution per attempt: the one recorded first stays, and can be cancelled.
            return _skip(movie, "the attempt has an execution", CancelExecution(event.execution))
        return _update(movie, event.stage, event.at, execution=event.execution, starting_at=None)
    if isinstance(event, Progressed):
        if event.progress <= st.progress:
            return _skip(movie, "progress did not advance")
        return _update(movie, event.stage, event.at, progress=min(100, event.progress))
    if isinstance(event, StageSucceeded):
        return _succeed(movie, event)
    if isinstance(event, StageFailed):
        error = StageError(
            code=event.code,
            message=event.message,
            retryable=event.retryable,
            attempt=event.attempt,
            at=event.at,
        )
        return _fail(
            movie, event.stage, error, config, outage=event.outage, hint_s=event.retry_after_s
        )
    if event.at < (st.deadline or event.at):
        return _skip(movie, "deadline not reached")
    error = StageError(
        code="timeout",
        message=f"{event.stage.value} did not finish within {config[event.stage].timeout_s:g}s",
        retryable=True,
        attempt=event.attempt,
        at=event.at,
    )
    return _fail(movie, event.stage, error, config)


def _update(movie: Movie, stage: Stage, at: datetime, **changes: object) -> Decision:
    stages = dict(movie.stages)
    stages[stage] = movie.stages[stage].model_copy(update=changes)
    return Decision(movie.model_copy(update={"stages": stages, "updated_at": at}))


def _claim(movie: Movie, event: Claimed, config: PipelineConfig) -> Decision:
    st = movie.stages[event.stage]
    if movie.status.terminal or st.status is not StageStatus.waiting:
        return _skip(movie, "not waiting in this stage")
    attempt = st.attempts + 1
    deadline = event.at + timedelta(seconds=config[event.stage].timeout_s)
    new_state = st.model_copy(
        update={
            "status": StageStatus.running,
            "attempts": attempt,
            "progress": 0,
            "ready_at": None,
            "started_at": event.at,
            "finished_at": None,
            "deadline": deadline,
            "execution": None,
            "starting_at": None,
        }
    )
    updated = movie.model_copy(
        update={
            "stages": {**movie.stages, event.stage: new_state},
            "status": STAGE_TO_MOVIE_STATUS[event.stage],
            "updated_at": event.at,
        }
    )
    return Decision(
        updated,
        (
            RunStage(movie.id, event.stage, attempt),
            CheckDeadline(movie.id, event.stage, attempt, deadline),
        ),
    )


def _succeed(movie: Movie, event: StageSucceeded) -> Decision:
    st = movie.stages[event.stage]
    stages = dict(movie.stages)
    stages[event.stage] = st.model_copy(
        update={
            "status": StageStatus.succeeded,
            "progress": 100,
            "finished_at": event.at,
            "deadline": None,
            "execution": None,
            "generator": event.generator or st.generator,
        }
    )
    nxt = event.stage.next
    commands: list[Command] = [Dispatch(event.stage)]
    update: dict[str, object] = {
        "stages": stages,
        "artifacts": {**movie.artifacts, **dict(event.artifacts)},
        "updated_at": event.at,
    }
    if nxt is None:
        update |= {"status": MovieStatus.succeeded, "finished_at": event.at, "error": None}
    else:
        stages[nxt] = StageState(status=StageStatus.waiting, ready_at=event.at)
        update["status"] = STAGE_TO_MOVIE_STATUS[nxt]
        commands.append(Dispatch(nxt))
    return Decision(movie.model_copy(update=update), tuple(commands))


def _note(movie: Movie, event: StageNoted) -> Decision:
    """Notes of the stage's latest attempt, running or just ended (a job's report may land
    after its deadline: the operation it started still exists and is still paid for)."""
    st = movie.stages[event.stage]
    if st.attempts != event.attempt or (movie.status.terminal and not event.usage):
        return _skip(movie, "not the stage's latest attempt")
    usage = dict(st.usage)
    for u in event.usage:
        usage[u.model] = usage[u.model] + u if u.model in usage else u
    changes: dict[str, object] = {"notes": {**st.notes, **dict(event.notes)}, "usage": usage}
    if event.generator is not None:
        changes["generator"] = event.generator
    return _update(movie, event.stage, event.at, **changes)


def _fail(
    movie: Movie,
    stage: Stage,
    error: StageError,
    config: PipelineConfig,
    *,
    outage: bool = False,
    hint_s: float | None = None,
) -> Decision:
    st = movie.stages[stage]
    commands: list[Command] = [Dispatch(stage)]  # the slot is free either way
    if st.execution:
        commands.append(CancelExecution(st.execution))
    policy, key = config[stage].retry, f"{movie.id}:{stage.value}"
    # An outage's failure is not the movie's: it costs no attempt, up to a bound, past which
    # an outage that never ends fails the movie like any failure.
    free = outage and error.retryable and st.uncharged < policy.max_outage_retries
    uncharged = st.uncharged + 1 if free else st.uncharged
    if free:
        delay: float | None = policy.backoff(uncharged, key=f"{key}:outage")
    else:
        delay = policy.next_delay(st.run_attempts - uncharged, key=key, hint_s=hint_s)
    stages = dict(movie.stages)
    update: dict[str, object] = {"stages": stages, "updated_at": error.at}
    common = {
        "finished_at": error.at,
        "deadline": None,
        "execution": None,
        "starting_at": None,
        "last_error": error,
        "uncharged": uncharged,
    }
    if error.retryable and delay is not None:
        ready_at = error.at + timedelta(seconds=delay)
        stages[stage] = st.model_copy(
            update={**common, "status": StageStatus.waiting, "ready_at": ready_at}
        )
        commands.append(Dispatch(stage, at=ready_at))
    else:
        stages[stage] = st.model_copy(update={**common, "status": StageStatus.failed})
        update |= {"status": MovieStatus.failed, "finished_at": error.at, "error": error}
    return Decision(movie.model_copy(update=update), tuple(commands))


def _cancel(movie: Movie, at: datetime) -> Decision:
    if movie.status.terminal:
        return _skip(movie, f"movie already {movie.status.value}")
    commands: list[Command] = []
    stages = dict(movie.stages)
    for stage in STAGES:
        st = movie.stages[stage]
        if st.status in (StageStatus.running, StageStatus.waiting):
            if st.status is StageStatus.running:
                commands.append(Dispatch(stage))
                if st.execution:
                    commands.append(CancelExecution(st.execution))
            stages[stage] = st.model_copy(
                update={
                    "status": StageStatus.cancelled,
                    "finished_at": at,
                    "deadline": None,
                    "ready_at": None,
                    "execution": None,
                    "starting_at": None,
                }
            )
    update = {"stages": stages, "status": MovieStatus.cancelled, "finished_at": at}
    return Decision(movie.model_copy(update={**update, "updated_at": at}), tuple(commands))


# What a retry starts again: the stage that failed, or the one the movie was cancelled in.
_RETRYABLE = {
    MovieStatus.failed: StageStatus.failed,
    MovieStatus.cancelled: StageStatus.cancelled,
}


def _retry(movie: Movie, at: datetime) -> Decision:
    stopped = _RETRYABLE.get(movie.status)
    if stopped is None:
        status = movie.status.value
        return _skip(movie, f"only a failed or cancelled movie can be retried: it is {status}")
    # A movie cancelled before it reached a stage (none cancelled) starts at the story.
    stage = next((s for s in STAGES if movie.stages[s].status is stopped), Stage.story)
    stages = dict(movie.stages)
    failed = movie.stages[stage]
    # Finished stages keep their results; the failed one starts a new run, with the policy's
    # attempts all over again, numbered on from the last (a late report of an abandoned
    # attempt must not match one of the new run).
    stages[stage] = StageState(
        status=StageStatus.waiting,
        ready_at=at,
        attempts=failed.attempts,
        first_attempt=failed.attempts + 1,
        last_error=failed.last_error,
        # What was paid stays counted; notes go: a new run starts its operations afresh
        # (one that failed for good would fail again).
        usage=failed.usage,
    )
    status = MovieStatus.queued if stage is Stage.story else STAGE_TO_MOVIE_STATUS[stage]
    update = {"stages": stages, "status": status, "finished_at": None, "error": None}
    return Decision(movie.model_copy(update={**update, "updated_at": at}), (Dispatch(stage),))
