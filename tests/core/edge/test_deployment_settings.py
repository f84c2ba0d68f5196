"""Introspection and CORS as the deployment's qiao.toml says."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from qiao.core.config import Config
from qiao.core.errors import ConfigurationError

INTROSPECT = "{ __schema { queryType { name } } }"
APP = "https://crm.example.cn"


@pytest.fixture
def qiao_config(qiao_config: Config, request: pytest.FixtureRequest) -> Config:
    changes = getattr(request, "param", {})
    return dataclasses.replace(qiao_config, **changes)


@pytest.mark.parametrize(
    ("qiao_config", "allowed"),
    [
        ({}, True),
        ({"production": True}, False),
        ({"production": True, "introspection": True}, True),
        ({"introspection": False}, False),
    ],
    indirect=["qiao_config"],
)
def test_introspection_follows_production_unless_set(qiao_client, allowed):
    response = qiao_client.post(INTROSPECT)
    if allowed:
        assert response["data"] == {"__schema": {"queryType": {"name": "Query"}}}
    else:
        assert response["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
        assert "introspection" in response["errors"][0]["message"].lower()
    assert qiao_client.data("{ me { username } }") == {"me": {"username": "admin"}}


def preflight(http, origin):
    return http.options(
        "/graphql",
        headers={
            "origin": origin,
            "access-control-request-method": "POST",
            "access-control-request-headers": "authorization, content-type",
        },
    )


@pytest.mark.parametrize("qiao_config", [{"cors_origins": (APP,)}], indirect=True)
def test_a_configured_origin_may_call_the_api_from_a_browser(http, qiao_admin_token):
    allowed = preflight(http, APP)
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == APP
    refused = preflight(http, "https://evil.example.com")
    assert refused.status_code == 400
    assert "access-control-allow-origin" not in refused.headers
    response = http.post(
        "/graphql",
        json={"query": "{ me { username } }"},
        headers={"origin": APP, "authorization": f"Bearer {qiao_admin_token}"},
    )
    assert response.headers["access-control-allow-origin"] == APP
    export = http.post(
        "/export/account",
        json={"format": "csv"},
        headers={"origin": APP, "authorization": f"Bearer {qiao_admin_token}"},
    )
    assert export.status_code == 200 and export.headers["access-control-allow-origin"] == APP
    exposed = export.headers["access-control-expose-headers"]
    assert "Content-Disposition" in exposed and "X-Total-Count" in exposed


def test_no_origin_is_allowed_unless_configured(http):
    response = preflight(http, APP)
    assert "access-control-allow-origin" not in response.headers


def test_server_settings_come_from_qiao_toml(tmp_path: Path):
    path = tmp_path / "qiao.toml"
    path.write_text(
        '[server]\nproduction = true\ncors_origins = ["https://crm.example.cn"]\n'
        "max_body_bytes = 2000000\n"
    )
    config = Config.load(path, env={})
    assert (config.production, config.introspection_enabled) == (True, False)
    assert config.cors_origins == ("https://crm.example.cn",)
    assert config.max_body_bytes == 2_000_000
    for bad in ('cors_origins = ["*"]', 'cors_origins = "https://a.cn"', 'production = "yes"'):
        path.write_text(f"[server]\n{bad}\n")
        with pytest.raises(ConfigurationError, match=r"\[server\]"):
            Config.load(path, env={})
