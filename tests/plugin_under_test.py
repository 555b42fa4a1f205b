"""The plugin file the out-of-process tests start: cl-revenue-ops.py run by the interpreter running the tests
(sys.executable), not by whatever `python3` is first on PATH (its `#!/usr/bin/env python3` line)."""
from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

from revops.sim.launcher import python_wrapper

ROOT = Path(__file__).resolve().parents[1]
SOURCE = str(ROOT / "cl-revenue-ops.py")
NAME = "cl-revenue-ops.py"
_DIR = tempfile.mkdtemp(prefix="revops-plugin-")
atexit.register(shutil.rmtree, _DIR, True)
PLUGIN = python_wrapper(SOURCE, _DIR)


def wait_running(ld, seconds: float = 20.0) -> None:
    """Wait until the plugin under the stand-in answers revenue-status with status "running" (bounded)."""
    import time
    deadline = time.monotonic() + seconds
    while ld.rpc.call("revenue-status")["status"] != "running":
        assert time.monotonic() < deadline, f"plugin not running after {seconds} s"
        time.sleep(0.05)
