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
}
