#!/usr/bin/env bash
# Says plainly what is missing before anything is installed. Exit 1 when a prerequisite is absent.
set -u
ok=1
py="${PYTHON:-python3.11}"
if ! command -v "$py" >/dev/null 2>&1; then
  if command -v python3 >/dev/null 2>&1 && python3 -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
    py=python3
  else
    echo "missing: Python 3.11 (looked for '$py' and python3 3.11 on PATH). Install Python 3.11, or set PYTHON=/path/to/python3.11." >&2
    ok=0
  fi
fi
if [ "$ok" = 1 ] && ! "$py" -c 'import venv, ensurepip' >/dev/null 2>&1; then
  echo "missing: the venv/ensurepip modules for $py (Debian: apt-get install python3.11-venv)." >&2
  ok=0
fi
if ! command -v java >/dev/null 2>&1; then
  echo "missing: Java 17 (pyspark needs it). Debian: apt-get install openjdk-17-jre-headless; or set JAVA_HOME." >&2
  ok=0
else
  major=$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1)
  if [ -z "$major" ] || [ "$major" -lt 17 ]; then
    echo "missing: Java 17 or newer for pyspark (found: $(java -version 2>&1 | head -1))." >&2
    ok=0
  fi
fi
[ "$ok" = 1 ] || exit 1
echo "$py"
