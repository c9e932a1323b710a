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
        self._made: set[str] = set()  # movie folders known to exist: a mkdir is a syscall

    def put(self, movie_id: str, name: str, source: Path) -> str:
        """Takes the file: moved into place when it is on the same file system."""
        path = f"{movie_id}/{_checked(name)}"
        dest = self.root / path
        if movie_id not in self._made:
            dest.parent.mkdir(parents=True, exist_ok=True)
            self._made.add(movie_id)
        # A rename is atomic: a reader never sees half a file, even after a crash.
        try:
            os.replace(source, dest)
        except OSError:  # another file system: copy beside, then rename
            tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
            _link_or_copy(source, tmp)
            os.replace(tmp, dest)
        return path

    def fetch(self, path: str, dest: Path) -> None:
        source = self.root / _checked(path)
        try:
            os.link(source, dest)
        except FileNotFoundError as e:
            raise NotFound(f"no artifact {path!r}") from e
        except OSError:  # the name is taken, or no hard links here
            _link_or_copy(source, dest)

    def delete(self, movie_id: str) -> int:
        # One folder directly under the root, never the root itself.
        if not movie_id or movie_id in (".", "..") or "/" in movie_id or "\0" in movie_id:
            return 0
        folder = self.root / movie_id
        if not folder.is_dir():
            return 0
        removed = sum(1 for p in folder.rglob("*") if p.is_file())
        shutil.rmtree(folder, ignore_errors=True)
        self._made.discard(movie_id)
        return removed

    def url(self, path: str) -> str:
        movie_id, _, name = path.partition("/")
        return f"/api/movies/{movie_id}/artifacts/{name}"

    def resolve(self, path: str) -> Path:
        """The file behind a storage path; refuses anything outside the artifact root."""
        full = (self.root / path).resolve()
        if not full.is_relative_to(self.root.resolve()) or not full.is_file():
            raise NotFound(f"no artifact {path!r}")
        return full


def _checked(path: str) -> str:
    """A relative path that stays inside the root, checked without a syscall (the paths
    come from movie documents; downloads go through resolve(), which follows links)."""
    if path.startswith("/") or ".." in path.split("/") or "\0" in path:
        raise NotFound(f"no artifact {path!r}")
    return path


def _link_or_copy(source: Path, dest: Path) -> None:
    """A hard link where possible: artifacts are written once and never changed in place, and
    a link creates no new file, the dearest part of storing one here."""
    dest.unlink(missing_ok=True)
    try:
        os.link(source, dest)
    except OSError:  # another file system, or one without hard links
        shutil.copyfile(source, dest)
