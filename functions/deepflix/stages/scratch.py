"""Working folders for stage attempts, emptied and reused instead of made and removed each time."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class Scratch:
    """A pool of empty folders under `root` (the system's temporary folder if None).

    An attempt's outputs are moved out of its folder and its inputs are hard links, so what
    it leaves is the folder itself, and freeing an inode has a price: on ext4 without a
    journal each inode freed in the last seconds is read and skipped by the next
    allocations (`recently_deleted`). Reused folders free none.
    """

    def __init__(self, root: Path | None) -> None:
        self.root = root
        self._free: list[Path] = []
        self._lock = threading.Lock()

    @contextmanager
    def folder(self) -> Iterator[Path]:
        """An empty folder for one attempt; whatever it left there is removed after it."""
        with self._lock:
            folder = self._free.pop() if self._free else None
        if folder is None:
            folder = Path(tempfile.mkdtemp(prefix="deepflix-work-", dir=self.root))
        try:
            yield folder
        finally:
            try:
                _empty(folder)
            except OSError:  # not reusable: let it go
                shutil.rmtree(folder, ignore_errors=True)
            else:
                with self._lock:
                    self._free.append(folder)

    def close(self) -> None:
        """Remove the pooled folders (a job process, before it exits)."""
        with self._lock:
            folders, self._free = self._free, []
        for folder in folders:
            shutil.rmtree(folder, ignore_errors=True)


def _empty(folder: Path) -> None:
    """Unlink every file under `folder`, keeping the folders: the generators use the same
    few names (`render/`) each time."""
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                _empty(Path(entry.path))
            else:
                os.unlink(entry.path)
