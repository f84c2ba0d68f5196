"""A SoftHSM2 token for the PKCS#11 provider's tests, with a sensitive AES key inside.

``scripts/test`` installs SoftHSM2 from Debian's packages when it is missing and
it runs as root. Elsewhere the tests are skipped, saying why; under ``CI=true``
a missing SoftHSM2 fails them instead, so CI never passes without running them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

LIBRARIES = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
)
PIN = "246810"


@dataclass(frozen=True)
class Token:
    library: str
    label: str
    pin: str
    key_label: str


def softhsm_token(folder: Path) -> Token:
    """A new token in ``folder`` holding the AES key ``qiao-kek`` (not extractable)."""
    library = next((p for p in LIBRARIES if Path(p).exists()), None)
    if library is None or shutil.which("softhsm2-util") is None:
        reason = (
            "SoftHSM2 is not installed (scripts/test installs it as root: apt-get install softhsm2)"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    import pkcs11

    conf = folder / "softhsm2.conf"
    (folder / "tokens").mkdir()
    conf.write_text(
        f"directories.tokendir = {folder / 'tokens'}\nobjectstore.backend = file\n"
        "log.level = ERROR\n",
        encoding="utf-8",
    )
    # SoftHSM2 reads its configuration once per process, when the library is first loaded.
    os.environ.setdefault("SOFTHSM2_CONF", str(conf))
    label = f"qiao-{uuid.uuid4().hex[:8]}"
    subprocess.run(
        [
            "softhsm2-util",
            "--init-token",
            "--free",
            "--label",
            label,
            "--pin",
            PIN,
            "--so-pin",
            "13579",
        ],
        check=True,
        capture_output=True,
        env={**os.environ},
    )
    token = pkcs11.lib(library).get_token(token_label=label)
    with token.open(user_pin=PIN, rw=True) as session:
        session.generate_key(
            pkcs11.KeyType.AES,
            256,
            label="qiao-kek",
            store=True,
            template={pkcs11.Attribute.SENSITIVE: True, pkcs11.Attribute.EXTRACTABLE: False},
        )
    return Token(library, label, PIN, "qiao-kek")
