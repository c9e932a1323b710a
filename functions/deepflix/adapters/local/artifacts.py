"""Artifacts on the local file system, under one folder per movie."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from deepflix.pipeline.errors import NotFound


class LocalArtifactStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def put(self, movie_id: str, name: str, source: Path) -> str:
        path = f"{movie_id}/{name}"
        dest = self.root / path
        dest.parent.mkdir(parents=True, exist_ok=True)
        # Write beside, then rename: a reader never sees half a file, even after a crash.
        tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
        _link_or_copy(source, tmp)
        os.replace(tmp, dest)
        return path

    def fetch(self, path: str, dest: Path) -> None:
        _link_or_copy(self.resolve(path), dest)

    def url(self, path: str) -> str:
        movie_id, _, name = path.partition("/")
        return f"/api/movies/{movie_id}/artifacts/{name}"

    def resolve(self, path: str) -> Path:
        """The file behind a storage path; refuses anything outside the artifact root."""
        full = (self.root / path).resolve()
        if not full.is_relative_to(self.root.resolve()) or not full.is_file():
            raise NotFound(f"no artifact {path!r}")
        return full


def _link_or_copy(source: Path, dest: Path) -> None:
    """A hard link where possible: artifacts are written once and never changed in place, and
    creating files dominated the embedded pipeline's cost (bench/RESULTS.md)."""
    dest.unlink(missing_ok=True)
    try:
        os.link(source, dest)
    except OSError:  # another file system, or one without hard links
        shutil.copyfile(source, dest)
