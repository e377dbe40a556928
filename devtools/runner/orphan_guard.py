"""Run a module as a child that dies with its parent: `python -m devtools.runner.orphan_guard PID MODULE
[ARGS...]` runs `python -m MODULE ARGS...` in this process, which the kernel kills with SIGKILL
when the process PID (its parent) dies, even when that one is killed outright (Linux:
`PR_SET_PDEATHSIG`; elsewhere the module simply runs)."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import runpy
import signal
import sys

PR_SET_PDEATHSIG = 1


def main() -> None:
    parent, module, *args = sys.argv[1:]
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != int(parent):  # the parent died before the call above
        sys.exit(1)
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
