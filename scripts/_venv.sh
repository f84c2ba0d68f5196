# Shared by scripts/quickstart and scripts/test: make .venv and install Qiao into it.
# QIAO_VENV names another virtual environment folder; QIAO_PYTHON another interpreter.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${QIAO_VENV:-$ROOT/.venv}"
PYTHON="${QIAO_PYTHON:-python3}"

if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "Qiao needs Python 3.11 or newer as '$PYTHON' (set QIAO_PYTHON to use another)." >&2
    exit 1
fi
if [ ! -x "$VENV/bin/python" ]; then
    echo "==> creating $VENV"
    "$PYTHON" -m venv "$VENV"
fi

# install_qiao EXTRAS: an editable install of Qiao with the given extras ("" or "[test]").
install_qiao() {
    echo "==> installing qiao-crm$1 into $VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e "$ROOT$1"
    # An editable install runs Qiao from these folders. Python caches each module's
    # bytecode beside it on first import, except where PYTHONDONTWRITEBYTECODE is set:
    # then every `qiao` process compiles some 230 modules again (about 0.7 s a start).
    # Compiling them here (only what changed since the last run) spares that; the
    # scaffolds are cookiecutter sources, not modules.
    "$VENV/bin/python" -m compileall -q -j 0 "$ROOT/api" "$ROOT/cli" "$ROOT/core" \
        "$ROOT/plugins" "$ROOT/templates_market" -x "/scaffolds/" >/dev/null
}
