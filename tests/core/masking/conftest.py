"""A clinic whose front desk reads patients' personal data masked (docs/privacy.md)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from qiao.core.auth.tokens import create_token
from qiao.core.config import Config
from qiao.core.crypto import generate_key_file
from qiao.core.hookmarkers import hookimpl
from qiao.core.records.context import Actor, Source
from qiao.core.runtime import Runtime
from qiao.core.testing.client import GraphQLClient
from qiao.core.testing.server import LiveServer

MANIFEST = Path(__file__).with_name("patients.yaml")

#: The front desk finds patients and calls them, but reads their identity masked.
FRONT_DESK = {
    "entities": {"patient": {"read": "all", "create": "all", "update": "all"}},
    "fields": {
        "patient": {
            "name": "masked",
            "mobile": "masked",
            "phone": "masked",
            "email": "masked",
            "id_number": "masked",
            "visits": "masked",
        }
    },
}
#: Doctors read everything in clear.
DOCTOR = {"entities": {"patient": {"read": "all", "update": "all"}}}

ZHANG = {
    "name": "张三",
    "mobile": "13812345678",
    "phone": "13900001111",
    "email": "zhangsan@example.cn",
    "id_number": "110101199003071234",
    "notes": "复诊",
    "visits": 3,
}


class Patients:
    """Declares the ``patient`` entity."""

    @hookimpl
    def qiao_entity_manifests(self) -> list[Path]:
        return [MANIFEST]


PATIENTS = Patients()


@pytest.fixture
def qiao_extra_plugins() -> Sequence[Any]:
    return [PATIENTS]


@pytest.fixture
def qiao_config(qiao_config: Config, tmp_path: Path) -> Config:
    generate_key_file(tmp_path / "qiao-kek.json")
    toml = tmp_path / "qiao.toml"
    toml.write_text('[keys]\nprovider = "file"\nfile = "qiao-kek.json"\n', encoding="utf-8")
    return dataclasses.replace(qiao_config, path=toml, root=tmp_path)


@dataclasses.dataclass
class Clinic:
    runtime: Runtime
    users: dict[str, str]
    patient: dict[str, Any]

    def actor(self, username: str) -> Actor:
        return Actor(user_id=self.users[username], username=username)

    def token(self, username: str) -> str:
        with self.runtime.db.write() as conn:
            return create_token(conn, self.runtime.current(), username)


@pytest.fixture
def clinic(qiao_runtime: Runtime) -> Clinic:
    """前台 holds the front desk role, 李医生 the doctor's, 王主任 both."""
    records = qiao_runtime.records
    users: dict[str, str] = {}
    with records.transaction(Actor.system(), Source.SYSTEM) as ctx:
        roles = {
            name: records.create(ctx, "role", {"name": name, "rights": rights})["id"]
            for name, rights in (("front_desk", FRONT_DESK), ("doctor", DOCTOR))
        }
        for username, display, held in (
            ("desk", "前台", ["front_desk"]),
            ("doctor", "李医生", ["doctor"]),
            ("head", "王主任", ["front_desk", "doctor"]),
        ):
            user = records.create(ctx, "user", {"username": username, "display_name": display})
            users[username] = user["id"]
            for role in held:
                records.create(ctx, "role_assignment", {"user": user["id"], "role": roles[role]})
        patient = records.create(ctx, "patient", ZHANG)
    return Clinic(qiao_runtime, users, patient)


@pytest.fixture
def client_for(clinic: Clinic, qiao_server: LiveServer) -> Iterator[Callable[[str], GraphQLClient]]:
    clients: list[GraphQLClient] = []

    def make(username: str) -> GraphQLClient:
        client = GraphQLClient(qiao_server.url, clinic.token(username))
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()
