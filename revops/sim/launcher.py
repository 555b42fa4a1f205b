"""Run a Python plugin file with a chosen interpreter.

lightningd (and the stand-in) execute a plugin file directly, so `#!/usr/bin/env python3` picks the first
`python3` on PATH, which may lack pyln (a venv that is not activated). A two-line shell wrapper with the
same file name runs the plugin with the interpreter we are running in instead.
"""
from __future__ import annotations

import os
import shlex
import stat
import sys


def python_wrapper(plugin: str, directory: str, python: str = sys.executable) -> str:
    """Write `directory/<plugin's file name>`: a shell script exec'ing `python plugin`; return its path."""
    path = os.path.join(directory, os.path.basename(plugin))
    with open(path, "w") as f:
        f.write(f'#!/bin/sh\nexec {shlex.quote(python)} {shlex.quote(os.path.realpath(plugin))} "$@"\n')
    os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path
