"""Google's Firestore emulator, as a child of the runner and of the tests.

    python -m devtools.runner.firestore_emulator --port PORT

Runs the emulator (the Debian package `google-cloud-cli-firestore-emulator`, or gcloud's
`cloud-firestore-emulator` component; it needs Java) on 127.0.0.1:PORT, in place of this process.
`emulator()` finds its launcher script: `FIRESTORE_EMULATOR`, else beside `gcloud`. Java is run
as the launcher runs it, but in this very process: the launcher is a bash script whose Java is a
child of its own, which the kernel's death signal (`orphan_guard`) would not reach, so a killed
runner would leave it serving. The port must be given: for 0 the emulator reports none. It keeps
everything in memory, and does not run TTL deletion.
"""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path

LAUNCHER = Path("platform/cloud-firestore-emulator/cloud_firestore_emulator")
JAR = "cloud-firestore-emulator.jar"  # beside the launcher
MAIN_CLASS = "com.google.cloud.datastore.emulator.firestore.CloudFirestore"


def _java() -> str | None:
    return shutil.which(os.environ.get("JAVA", "java"))


def emulator() -> Path | None:
    """The emulator's launcher, when it, its jar and Java are installed."""
    if _java() is None:
        return None
    candidates = []
    if given := os.environ.get("FIRESTORE_EMULATOR"):
        candidates.append(Path(given))
    if gcloud := shutil.which("gcloud"):
        candidates.append(Path(gcloud).resolve().parent.parent / LAUNCHER)  # the SDK's root
    return next((c for c in candidates if c.is_file() and (c.parent / JAR).is_file()), None)


def main(argv: list[str] | None = None) -> None:
    """Replace this process with the emulator's Java on 127.0.0.1:`--port`."""
    parser = argparse.ArgumentParser(prog="python -m devtools.runner.firestore_emulator")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    found, java = emulator(), _java()
    if found is None or java is None:
        parser.error("the Firestore emulator (and Java) is not installed")
    # -Duser.language=en: as the launcher sets, the emulator's messages exist only in English.
    os.execv(java, [java, "-Duser.language=en", "-cp", str(found.parent / JAR), MAIN_CLASS,
                    "--host", "127.0.0.1", "--port", str(args.port)])  # fmt: skip


if __name__ == "__main__":
    main()
