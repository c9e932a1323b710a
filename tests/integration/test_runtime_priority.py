"""The runtime's lowered CPU priority spares the threads a create waits for."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

# In a child: lowering a priority cannot be undone without privileges.
CHILD = """
import json, os, threading
from deepflix.runtime.serve import WRITE_PATH, _lower_priority
ids, stop = {}, threading.Event()
def run():
    ids[threading.current_thread().name] = threading.get_native_id()
    stop.wait()
names = ("write-channel", "sqlite-writer-movies.db", "consumer-1", "inline-job_0")
threads = [threading.Thread(target=run, name=n) for n in names]
for t in threads:
    t.start()
while len(ids) < len(names):
    pass
_lower_priority(5, [], keep=WRITE_PATH)
nice = {n: os.getpriority(os.PRIO_PROCESS, tid) for n, tid in ids.items()}
nice["main"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
stop.set()
print(json.dumps(nice))
"""


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="per-thread nice is Linux's")
def test_the_write_path_keeps_its_priority_and_the_rest_is_lowered() -> None:
    out = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, check=True, timeout=60
    )
    nice = json.loads(out.stdout)
    base = nice["write-channel"]
    assert nice["sqlite-writer-movies.db"] == base
    assert nice["consumer-1"] == nice["inline-job_0"] == nice["main"] == min(19, base + 5)
