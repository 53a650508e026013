# Sourced by the set-up scripts: PY311 is a CPython 3.11 (bpy 5.0.1 exists only for 3.11), or exit.
PY311=${PY311:-$(command -v python3.11 || true)}
if [ -z "$PY311" ]; then
  echo "$(basename "$0"): needs CPython 3.11: install it (e.g. 'uv python install 3.11') and set PY311=/path/to/python3.11" >&2
  exit 1
fi
