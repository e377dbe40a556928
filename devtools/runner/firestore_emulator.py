"""Google's Firestore emulator, as a child of the runner and of the tests.

    python -m devtools.runner.firestore_emulator --port PORT

Runs `cloud_firestore_emulator` (the Debian package `google-cloud-cli-firestore-emulator`, or
gcloud's `cloud-firestore-emulator` component; it needs Java) on 127.0.0.1:PORT, in place of this
process. `emulator()` finds it: `FIRESTORE_EMULATOR` (the launcher script), else beside `gcloud`.
The port must be given: for 0 the emulator reports none. It keeps everything in memory, and
does not run TTL deletion.
"""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path

LAUNCHER = Path("platform/cloud-firestore-emulator/cloud_firestore_emulator")


def emulator() -> Path | None:
    """The emulator's launcher, when it and Java are installed."""
    if shutil.which(os.environ.get("JAVA", "java")) is None:
        return None
    candidates = []
    if given := os.environ.get("FIRESTORE_EMULATOR"):
        candidates.append(Path(given))
    if gcloud := shutil.which("gcloud"):
        candidates.append(Path(gcloud).resolve().parent.parent / LAUNCHER)  # the SDK's root
    return next((c for c in candidates if c.is_file() and os.access(c, os.X_OK)), None)


def main(argv: list[str] | None = None) -> None:
    """Replace this process with the emulator on 127.0.0.1:`--port`."""
    parser = argparse.ArgumentParser(prog="python -m devtools.runner.firestore_emulator")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    found = emulator()
    if found is None:
        parser.error("the Firestore emulator (and Java) is not installed")
    os.execv(found, [str(found), "--host", "127.0.0.1", "--port", str(args.port)])


if __name__ == "__main__":
    main()
