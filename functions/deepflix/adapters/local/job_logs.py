"""The job log files of the embedded job runner, read back per movie."""

from __future__ import annotations

import re
from collections import deque
from pathlib import Path

from deepflix.pipeline.models import STAGES

_NAME = re.compile(r"^(?P<stage>[a-z]+)-(?P<movie>[0-9a-f]+)-(?P<attempt>\d+)\.log$")


class JobLogFiles:
    """`JobLogs` on the folder SubprocessJobRunner writes a log per execution into, named
    `{stage}-{movie_id}-{attempt}.log`: a movie's logs are its stages' attempts in order."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir

    def files(self, movie_id: str) -> list[Path]:
        if not re.fullmatch(r"[0-9a-f]+", movie_id) or not self.log_dir.is_dir():
            return []
        found = []
        for path in self.log_dir.glob(f"*-{movie_id}-*.log"):
            m = _NAME.match(path.name)
            if m and m["movie"] == movie_id and m["stage"] in {s.value for s in STAGES}:
                order = [s.value for s in STAGES].index(m["stage"])
                found.append((order, int(m["attempt"]), path))
        return [p for _, _, p in sorted(found)]

    def tail(self, movie_id: str, lines: int) -> str | None:
        files = self.files(movie_id)
        if not files:
            return None
        last: deque[str] = deque(maxlen=lines)
        for path in files:
            last.append(f"==> {path.name} <==\n")
            try:
                with path.open(encoding="utf-8", errors="replace") as f:
                    last.extend(f)
            except FileNotFoundError:  # removed meanwhile
                continue
        text = "".join(last)
        return text if text.endswith("\n") or not text else text + "\n"

    def remove(self, movie_id: str) -> None:
        for path in self.files(movie_id):
            path.unlink(missing_ok=True)
