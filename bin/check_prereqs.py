#!/usr/bin/env python3
"""Check what memberlake needs before anything is installed: Python 3.10-3.13 and Java 17+.

Runs with the system Python and the standard library only, so that a missing prerequisite gets
a clear message instead of a stack trace from pip or Spark.
"""
import os
import re
import shutil
import subprocess
import sys

MIN_PY, MAX_PY = (3, 10), (3, 13)
MIN_JAVA = 17


def fail(message: str) -> None:
    sys.stderr.write(f"memberlake prerequisites: {message}\n")
    sys.exit(1)


def main() -> None:
    if not (MIN_PY <= sys.version_info[:2] <= MAX_PY):
        fail(f"Python {sys.version.split()[0]} found; pyspark 4.0 needs Python 3.10 to 3.13. "
             "Install one (e.g. `apt-get install python3.11-venv`, pyenv, or python.org) and run "
             "`make PYTHON=python3.11 ...`.")
    try:
        import ensurepip  # noqa: F401
        import venv  # noqa: F401
    except ImportError:
        fail("the Python venv module is missing: install it (Debian/Ubuntu: `apt-get install python3-venv`).")
    java_home = os.environ.get("JAVA_HOME")
    java = os.path.join(java_home, "bin", "java") if java_home else shutil.which("java")
    if not java or not os.path.exists(java):
        fail("Java not found. Spark needs Java 17 or newer: `apt-get install openjdk-17-jre-headless` "
             "(Debian/Ubuntu), `brew install openjdk@17` (macOS), or set JAVA_HOME.")
    out = subprocess.run([java, "-version"], capture_output=True, text=True)
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    major = int(match.group(1)) if match else 0
    if major == 1 and match and match.group(2):
        major = int(match.group(2))
    if major < MIN_JAVA:
        fail(f"Java {major or '?'} found at {java}; Spark 4 needs Java {MIN_JAVA}+. "
             "Install openjdk-17 and point JAVA_HOME at it.")
    print(f"prerequisites ok: Python {sys.version.split()[0]}, Java {major}")


if __name__ == "__main__":
    main()
