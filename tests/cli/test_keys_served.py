"""Key rotation reaches a running ``qiao serve`` without a restart (docs/encryption.md)."""

from __future__ import annotations

import threading
from pathlib import Path

from qiao.core.testing.client import GraphQLClient
from qiao.core.testing.deployment import Deployment

PATIENT = Path(__file__).parents[1] / "core" / "encryption" / "patient.yaml"
CREATE = "mutation($input: PatientCreateInput!) { createPatient(input: $input) { id diagnosis } }"
FIND = '{ patients(first: 500, filter: {phone: {eq: "13800138000"}}) { totalCount } }'
ALL = "{ patients(first: 500) { totalCount edges { node { name diagnosis notes } } } }"


def test_rotations_reach_a_running_server_while_it_keeps_writing(
    qiao_deployment: Deployment,
) -> None:
    """KEK rotation, data-key rotation, retire and both rotations again, with writes going on.

    The server learns of each new key within KEYS_TTL; ``rotate --data`` waits that long
    before its pass, so the retired key seals nothing, and every record stays readable.
    """
    site = qiao_deployment
    site.run("entity", "create", str(PATIENT))
    token = site.run("token", "create", "--user", "admin", "--name", "test").stdout.strip()
    written: list[str] = []
    errors: list[object] = []
    stop = threading.Event()
    with site.serve() as served:
        client = GraphQLClient(served.url, token)

        def keep_writing() -> None:
            while not stop.is_set():
                name = f"患者{len(written)}"
                values = {"name": name, "phone": "13800138000", "diagnosis": "高血压"}
                try:
                    made = client.data(CREATE, {"input": {**values, "notes": name}})
                    assert made["createPatient"]["diagnosis"] == "高血压"
                    written.append(name)
                    stop.wait(0.05)
                except Exception as exc:  # reported by the assertion below
                    errors.append(exc)
                    return

        writer = threading.Thread(target=keep_writing)
        writer.start()
        try:
            while len(written) < 3 and not errors:
                stop.wait(0.05)
            assert "file:v2" in site.run("keys", "rotate").stdout
            assert "dek-patient-2" in site.run("keys", "rotate", "--data").stdout
            site.run("keys", "retire", "dek-patient-1")
            assert "file:v3" in site.run("keys", "rotate").stdout
            assert "dek-patient-3" in site.run("keys", "rotate", "--data").stdout
            site.run("keys", "retire", "dek-patient-2")
        finally:
            stop.set()
            writer.join()
        assert errors == []
        every = client.data(ALL)["patients"]
        rows = every["edges"]
        found = client.data(FIND)["patients"]["totalCount"]
        client.close()
    assert every["totalCount"] == len(written)
    assert {r["node"]["name"] for r in rows} <= set(written)
    assert {(r["node"]["diagnosis"], r["node"]["notes"] == r["node"]["name"]) for r in rows} == {
        ("高血压", True)
    }
    assert found == len(written) > 3
    status = site.run("keys", "status").stdout
    assert "dek-patient-3" in status and "dek-patient-1 " not in status
    assert "Traceback" not in served.log, served.log
