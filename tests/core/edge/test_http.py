"""GraphQL over HTTP as its spec says, bounded bodies, headers, handlers and the actor."""

from __future__ import annotations

import json
import select
import socket

import pytest

from qiao.core.edge.headers import SECURITY_HEADERS
from qiao.core.graphql import service

CREATE = 'mutation { createAccount(input: {name: "经 GET 创建"}) { id } }'


def auth(token):
    return {"authorization": f"Bearer {token}"}


def test_a_query_runs_over_get(http, qiao_admin_token):
    response = http.get(
        "/graphql", params={"query": "{ me { username } }"}, headers=auth(qiao_admin_token)
    )
    assert response.status_code == 200
    assert response.json() == {"data": {"me": {"username": "admin"}}}


def test_a_mutation_over_get_is_405_and_changes_nothing(http, qiao_admin_token, qiao_client):
    response = http.get("/graphql", params={"query": CREATE}, headers=auth(qiao_admin_token))
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert response.json()["errors"][0]["extensions"]["code"] == "METHOD_NOT_ALLOWED"
    assert qiao_client.data("{ accounts { totalCount } }") == {"accounts": {"totalCount": 0}}


def test_other_methods_are_405_with_a_code(http):
    response = http.put("/graphql", json={"query": "{ me { username } }"})
    assert response.status_code == 405
    assert response.json()["errors"][0]["extensions"]["code"] == "METHOD_NOT_ALLOWED"


def raw_request(server, head: bytes) -> socket.socket:
    host, port = server.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=30)
    sock.sendall(head)
    return sock


def status_of(sock: socket.socket) -> tuple[int, bytes]:
    """The status and the whole response (headers, and a body of Content-Length bytes)."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.lower().split(b"\r\n")
        if line.startswith(b"content-length:")
    )
    while len(body) < length:
        body += sock.recv(65536)
    return int(head.split(b" ", 2)[1]), head + b"\r\n\r\n" + body


def test_a_declared_oversize_body_is_refused_before_it_is_sent(qiao_server):
    head = (
        b"POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 300000000\r\n\r\n"
    )
    with raw_request(qiao_server, head) as sock:
        status, response = status_of(sock)
    assert status == 413
    assert b'"code":"PAYLOAD_TOO_LARGE"' in response


def test_a_streamed_oversize_body_is_refused_while_it_streams(qiao_server):
    """A chunked body without a length is cut off just past the limit, not read whole.

    The client counts what it handed to the kernel: loopback socket buffers (Linux
    defaults: 4 MB to send, up to 32 MB to receive) hold several MB in flight before the
    server's answer comes back, more so on a busy machine. So the check is that the
    answer came well before the 50 MB body ended, not a count of what the server read.
    """
    head = (
        b"POST /auth/sign-in HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b"x" * 65536
    sent = 0
    with raw_request(qiao_server, head) as sock:
        while sent < 50_000_000:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                break
            try:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            except OSError:  # the server closed the connection after answering
                break
            sent += len(chunk)
        status, _ = status_of(sock)
    assert status == 413
    assert sent < 25_000_000  # answered after the 1 MB limit, long before 50 MB


def test_the_cost_gate_refuses_before_validation_runs(qiao_client, monkeypatch):
    validated = []
    real = service.validate
    monkeypatch.setattr(service, "validate", lambda *a, **k: validated.append(1) or real(*a, **k))
    (error,) = qiao_client.errors("{" + " me { username }" * 1200 + " }")
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "more than 2000 tokens" in error["message"]
    (error,) = qiao_client.errors("{" + " me { username }" * 11 + " }")
    assert "'me' more than 10 times" in error["message"]
    (error,) = qiao_client.errors("{ ...F } fragment F on Query {" + " me { id }" * 11 + " }")
    assert "'me' more than 10 times" in error["message"]
    fragments = "fragment F0 on Query { me { username } }\n" + "\n".join(
        f"fragment F{i} on Query {{ ...F{i - 1} ...F{i - 1} }}" for i in range(1, 12)
    )
    (error,) = qiao_client.errors("{ ...F11 }\n" + fragments)
    assert "fields (fragments expanded)" in error["message"]
    aliases = " ".join(f"a{i}: me {{ username }}" for i in range(31))
    (error,) = qiao_client.errors("{ " + aliases + " }")
    assert "more than 30 aliases" in error["message"]
    deep = "{ me { team { parent { parent { parent { parent { parent { parent { parent { parent { parent { parent { parent { name } } } } } } } } } } } } } }"  # noqa: E501
    (error,) = qiao_client.errors(deep)
    assert "levels deep" in error["message"]
    assert validated == []


def test_security_headers_are_on_every_response(http, qiao_admin_token, qiao_server):
    responses = [
        http.post(
            "/graphql", json={"query": "{ me { username } }"}, headers=auth(qiao_admin_token)
        ),
        http.get("/healthz"),
        http.get("/no/such/path"),
        http.get("/graphql", params={"query": CREATE}),
        http.post("/auth/sign-in", content=b"{}"),
        http.get("/probe/broken"),  # last: the server closes this connection after a 500
    ]
    with raw_request(
        qiao_server,
        b"POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Length: 300000000\r\n\r\n",
    ) as sock:
        _, too_large = status_of(sock)
    for response in responses:
        for name, value in SECURITY_HEADERS.items():
            assert response.headers.get(name) == value, (response.url, name)
    assert b"content-security-policy: default-src 'self'" in too_large.lower()


def test_an_unexpected_error_is_500_with_a_code_and_no_traceback(http, caplog):
    response = http.post("/probe/broken", json={})
    assert response.status_code == 500
    body = response.json()
    assert body["errors"][0]["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    assert "secret detail" not in response.text and "Traceback" not in response.text
    assert any("secret detail" in str(r.exc_info) for r in caplog.records if r.exc_info)


def test_an_unknown_path_is_404_with_a_code(http):
    response = http.get("/no/such/path")
    assert response.status_code == 404
    assert response.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"


@pytest.mark.parametrize(
    ("headers", "status", "expected"),
    [
        ("admin", 200, "admin"),
        (None, 401, "send 'Authorization: Bearer <token>'"),
        ({"authorization": "Bearer qiao_nope"}, 401, "the token is unknown or revoked"),
    ],
)
def test_plugin_routes_get_the_actor_from_the_token(
    http, qiao_admin_token, headers, status, expected
):
    sent = auth(qiao_admin_token) if headers == "admin" else headers
    response = http.get("/probe/whoami", headers=sent)
    assert response.status_code == status
    body = response.json()
    if status == 200:
        assert body == {"username": "admin", "scopes": ["authenticated", "write"]}
    else:
        (error,) = body["errors"]
        assert error["extensions"]["code"] == "UNAUTHENTICATED"
        assert expected in error["message"]


def test_graphql_answers_an_unknown_token_in_its_own_way(http):
    response = http.post(
        "/graphql", json={"query": "{ me { username } }"}, headers=auth("qiao_nope")
    )
    assert response.status_code == 200
    assert json.loads(response.text)["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
