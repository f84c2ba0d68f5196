"""Plugins at work through the real server and records service, on both backends.

One plugin object, :class:`WarrantyProbe`, uses every hook the way a vertical
plugin would (an entity on top of crm, GraphQL fields, a route, write hooks,
start-up) and records what Qiao handed it, so the tests can check both the
effect and the arguments.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import sys
from collections.abc import Callable, Iterator
from importlib.metadata import EntryPoint
from pathlib import Path
from types import ModuleType
from typing import Any

import click
import httpx
import pytest
import strawberry
import tomli_w
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route
from strawberry.types import Info

from qiao.cli import main as cli_main
from qiao.core import pluginmanager
from qiao.core.app import create_app
from qiao.core.config import Config
from qiao.core.errors import BadUserInput, ConfigurationError
from qiao.core.graphql.service import GraphQLService
from qiao.core.hookmarkers import hookimpl
from qiao.core.metadata.model import EntityDef
from qiao.core.pluginmanager import ENTRY_POINT_GROUP, create_plugins
from qiao.core.records.context import Actor, Source, WriteContext
from qiao.core.runtime import Runtime
from qiao.core.testing.client import GraphQLClient

from .plugin_fixtures import warranty

CLAIM = "id code title version account { name }"
Changes = dict[str, tuple[Any, Any]]


# -- The plugin under test ----------------------------------------------------------------


@strawberry.type
class Query:
    @strawberry.field(description="How many warranty claims exist (read through the service).")
    def warranty_claim_count(self, info: Info) -> int:
        runtime: Runtime = info.context.runtime
        with runtime.db.read() as conn:
            page = runtime.records.list(
                conn, "warranty_claim", first=1, with_total=True, actor=Actor.system()
            )
        return page.total_count or 0


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Open a claim through the records service.")
    def open_warranty_claim(self, info: Info, code: str) -> strawberry.ID:
        records = info.context.runtime.records
        with records.transaction(info.context.actor, Source.GRAPHQL) as ctx:
            claim = records.create(ctx, "warranty_claim", {"code": code, "title": "opened"})
        return strawberry.ID(claim["id"])


async def ping(_: Request) -> JSONResponse:
    return JSONResponse({"plugin": "warranty", "ok": True})


class WarrantyProbe:
    """The warranty plugin as an object that remembers what its hooks received."""

    def __init__(self) -> None:
        self.__name__ = "warranty_probe"
        self.started: list[Runtime] = []
        self.written: list[tuple[str, Changes, Source, str]] = []
        self.contexts: list[WriteContext] = []

    @hookimpl
    def qiao_entity_manifests(self) -> list[Path]:
        return [warranty.MANIFEST]

    @hookimpl
    def qiao_graphql_types(self) -> list[type]:
        return [Query, Mutation]

    @hookimpl
    def qiao_routes(self) -> list[BaseRoute]:
        return [Route("/warranty/ping", ping, methods=["GET"])]

    @hookimpl(entities=["warranty_claim"])
    def qiao_before_record_write(self, values: dict[str, Any]) -> None:
        """Upper-case codes; refuse VOID; turn LONG into a code too long for its field."""
        if not isinstance(values.get("code"), str):
            return
        values["code"] = values["code"].upper()
        if values["code"] == "VOID":
            raise BadUserInput("VOID is not a claim code", field="code")
        if values["code"] == "LONG":
            values["code"] = "WC-" + "9" * 30

    @hookimpl(entities=["warranty_claim"])
    def qiao_after_record_write(
        self,
        context: WriteContext,
        operation: str,
        record: dict[str, Any],
        changes: Changes,
    ) -> None:
        self.contexts.append(context)
        self.written.append((operation, dict(changes), context.source, context.actor.username))
        if record["title"] == "explode":
            raise RuntimeError("the ERP refused the claim")

    @hookimpl
    def qiao_startup(self, runtime: Runtime) -> None:
        self.started.append(runtime)


@pytest.fixture
def probe() -> WarrantyProbe:
    return WarrantyProbe()


@pytest.fixture
def qiao_extra_plugins(probe: WarrantyProbe) -> list[Any]:
    return [probe]


def _write(runtime: Runtime, fn: Callable[[WriteContext], Any]) -> Any:
    with runtime.records.transaction(Actor.system(), Source.SYSTEM) as ctx:
        return fn(ctx)


def _create_claim(client: GraphQLClient, **values: Any) -> dict[str, Any]:
    data = client.data(
        f"mutation($input: WarrantyClaimCreateInput!) {{ createWarrantyClaim(input: $input) "
        f"{{ {CLAIM} }} }}",
        {"input": values},
    )
    claim: dict[str, Any] = data["createWarrantyClaim"]
    return claim


def _codes(errors: list[dict[str, Any]]) -> list[str]:
    return [e["extensions"]["code"] for e in errors]


@pytest.fixture
def bare_runtime(tmp_path: Path) -> Iterator[Callable[..., Runtime]]:
    """``bare_runtime(*plugins)``: core plus these plugins on a migrated SQLite file.

    For what is refused before any request is served, where one backend says it all.
    """
    made: list[Runtime] = []

    def _make(*extra: Any) -> Runtime:
        url = f"sqlite:///{tmp_path / f'bare{len(made)}.db'}"
        runtime = Runtime(Config(database_url=url, plugins=()), extra_plugins=extra)
        made.append(runtime)
        runtime.migrate()
        return runtime

    yield _make
    for runtime in made:
        runtime.close()


def _serve_lifespan(app: Any) -> None:
    """Start and stop ``app`` as uvicorn does (the ASGI lifespan); start-up errors propagate."""
    messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])

    async def receive() -> dict[str, Any]:
        return next(messages)

    async def send(_: dict[str, Any]) -> None:
        return None

    asyncio.run(app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, receive, send))


def _named(name: str, **hooks: Callable[..., Any]) -> Any:
    """A plugin object called ``name`` implementing ``hooks``."""
    cls = type(name, (), {hook: hookimpl(staticmethod(fn)) for hook, fn in hooks.items()})
    plugin = cls()
    plugin.__name__ = name
    return plugin


# -- Entities -----------------------------------------------------------------------------


def test_a_plugin_entity_gets_a_table_and_a_graphql_api(qiao_client: GraphQLClient) -> None:
    account = qiao_client.data('mutation { createAccount(input: {name: "苏州精工"}) { id } }')
    account_id = account["createAccount"]["id"]
    claim = _create_claim(qiao_client, code="WC-0001", title="主轴异响", accountId=account_id)
    assert claim["account"] == {"name": "苏州精工"}
    listed = qiao_client.data(
        "{ warrantyClaims { totalCount edges { node { code account { name } } } } }"
    )
    assert listed["warrantyClaims"] == {
        "totalCount": 1,
        "edges": [{"node": {"code": "WC-0001", "account": {"name": "苏州精工"}}}],
    }
    reverse = qiao_client.data(
        "query($id: ID!) { account(id: $id) { warrantyClaims { totalCount } } }",
        {"id": account_id},
    )
    assert reverse == {"account": {"warrantyClaims": {"totalCount": 1}}}


# -- GraphQL ------------------------------------------------------------------------------


def test_plugin_fields_work_next_to_generated_ones(
    qiao_client: GraphQLClient, probe: WarrantyProbe
) -> None:
    opened = qiao_client.data('mutation { openWarrantyClaim(code: "wc-0042") }')
    claim_id = opened["openWarrantyClaim"]
    data = qiao_client.data(
        "query($id: ID!) { warrantyClaimCount warrantyClaim(id: $id) { code title } "
        "warrantyClaims { totalCount } }",
        {"id": claim_id},
    )
    assert data == {
        "warrantyClaimCount": 1,
        "warrantyClaim": {"code": "WC-0042", "title": "opened"},
        "warrantyClaims": {"totalCount": 1},
    }
    operation, changes, source, actor = probe.written[-1]
    assert (operation, source, actor) == ("create", Source.GRAPHQL, "admin")
    assert changes["code"] == (None, "WC-0042")


def test_a_root_field_two_plugins_define_names_both(bare_runtime: Callable[..., Runtime]) -> None:
    @strawberry.type(name="Query")
    class FirstQuery:
        @strawberry.field
        def ping(self) -> str:
            return "first"

    @strawberry.type(name="Query")
    class SecondQuery:
        @strawberry.field
        def ping(self) -> str:
            return "second"

    runtime = bare_runtime(
        _named("first", qiao_graphql_types=lambda: [FirstQuery]),
        _named("second", qiao_graphql_types=lambda: [SecondQuery]),
    )
    with pytest.raises(ConfigurationError) as caught:
        GraphQLService(runtime).schema()
    message = caught.value.message
    assert message.startswith("Query.ping is defined by both plugin ")
    assert {"'first'", "'second'"} <= set(message.split())


def test_a_plugin_field_may_not_shadow_a_generated_one(
    bare_runtime: Callable[..., Runtime],
) -> None:
    @strawberry.type(name="Mutation")
    class Sneaky:
        @strawberry.mutation
        def create_user(self, username: str) -> str:
            return username

    runtime = bare_runtime(_named("sneaky", qiao_graphql_types=lambda: [Sneaky]))
    with pytest.raises(ConfigurationError) as caught:
        GraphQLService(runtime).schema()
    assert caught.value.message == (
        "Mutation.createUser is defined by both generated from metadata and plugin 'sneaky'"
    )
    with pytest.raises(ConfigurationError, match="createUser"):
        _serve_lifespan(create_app(runtime))


# -- Routes -------------------------------------------------------------------------------


def test_a_plugin_route_is_served(qiao_server: Any) -> None:
    response = httpx.get(f"{qiao_server.url}/warranty/ping")
    assert response.status_code == 200
    assert response.json() == {"plugin": "warranty", "ok": True}


@pytest.mark.parametrize("path", ["/graphql", "/healthz", "/readyz"])
def test_a_plugin_route_on_qiaos_own_path_is_refused(
    bare_runtime: Callable[..., Runtime], path: str
) -> None:
    runtime = bare_runtime(_named("squatter", qiao_routes=lambda: [Route(path, ping)]))
    with pytest.raises(ConfigurationError) as caught:
        create_app(runtime)
    assert path in caught.value.message


# -- Before a write -----------------------------------------------------------------------


def test_before_write_changes_what_is_stored(qiao_client: GraphQLClient) -> None:
    claim = _create_claim(qiao_client, code="wc-0007", title="漏油")
    assert claim["code"] == "WC-0007"
    updated = qiao_client.data(
        'mutation($id: ID!) { updateWarrantyClaim(id: $id, input: {code: "wc-0008"}) { code } }',
        {"id": claim["id"]},
    )
    assert updated == {"updateWarrantyClaim": {"code": "WC-0008"}}
    stored = qiao_client.data(
        "query($id: ID!) { warrantyClaim(id: $id) { code } }", {"id": claim["id"]}
    )
    assert stored == {"warrantyClaim": {"code": "WC-0008"}}


def test_before_write_refuses_with_the_field_and_nothing_is_written(
    qiao_client: GraphQLClient, count_rows: Callable[[str], int]
) -> None:
    errors = qiao_client.errors('mutation { createWarrantyClaim(input: {code: "void"}) { id } }')
    assert [e["extensions"] for e in errors] == [{"code": "BAD_USER_INPUT", "field": "code"}]
    assert "VOID" in errors[0]["message"]
    assert count_rows("warranty_claim") == 0


def test_a_value_changed_by_a_hook_is_checked_again(
    qiao_client: GraphQLClient, count_rows: Callable[[str], int]
) -> None:
    errors = qiao_client.errors('mutation { createWarrantyClaim(input: {code: "long"}) { id } }')
    assert _codes(errors) == ["BAD_USER_INPUT"]
    assert errors[0]["extensions"]["field"] == "code"
    assert "20" in errors[0]["message"]
    assert count_rows("warranty_claim") == 0


def test_a_refusal_rolls_back_the_whole_transaction(
    qiao_runtime: Runtime, count_rows: Callable[[str], int]
) -> None:
    records = qiao_runtime.records

    def account_then_refused_claim(ctx: WriteContext) -> None:
        account = records.create(ctx, "account", {"name": "无锡机床"})
        records.create(ctx, "warranty_claim", {"code": "void", "account": account["id"]})

    with pytest.raises(BadUserInput):
        _write(qiao_runtime, account_then_refused_claim)
    assert count_rows("account") == 0
    assert count_rows("warranty_claim") == 0


# -- After a write ------------------------------------------------------------------------


def test_after_write_sees_old_and_new_values(
    qiao_client: GraphQLClient, probe: WarrantyProbe
) -> None:
    claim = _create_claim(qiao_client, code="wc-0100", title="first")
    qiao_client.data(
        'mutation($id: ID!) { updateWarrantyClaim(id: $id, input: {title: "second"}) { id } }',
        {"id": claim["id"]},
    )
    qiao_client.data(
        'mutation($id: ID!) { updateWarrantyClaim(id: $id, input: {title: "second"}) { id } }',
        {"id": claim["id"]},
    )
    qiao_client.data("mutation($id: ID!) { deleteWarrantyClaim(id: $id) }", {"id": claim["id"]})
    assert probe.written == [
        ("create", {"code": (None, "WC-0100"), "title": (None, "first")}, Source.GRAPHQL, "admin"),
        ("update", {"title": ("first", "second")}, Source.GRAPHQL, "admin"),
        (
            "delete",
            {"code": ("WC-0100", None), "title": ("second", None), "account": (None, None)},
            Source.GRAPHQL,
            "admin",
        ),
    ], "the unchanged second update is not reported"


def test_raising_after_a_create_rolls_it_back(
    qiao_runtime: Runtime, count_rows: Callable[[str], int]
) -> None:
    records = qiao_runtime.records
    with pytest.raises(RuntimeError, match="ERP refused"):
        _write(
            qiao_runtime,
            lambda ctx: records.create(ctx, "warranty_claim", {"code": "WC-1", "title": "explode"}),
        )
    assert count_rows("warranty_claim") == 0


def test_raising_after_an_update_keeps_the_stored_record(
    qiao_runtime: Runtime, create: Callable[..., dict[str, Any]]
) -> None:
    claim = create("warranty_claim", code="WC-2", title="calm")
    records = qiao_runtime.records
    with pytest.raises(RuntimeError, match="ERP refused"):
        _write(
            qiao_runtime,
            lambda ctx: records.update(ctx, "warranty_claim", claim["id"], {"title": "explode"}),
        )
    with qiao_runtime.db.read() as conn:
        stored = records.get(conn, "warranty_claim", claim["id"], actor=Actor.system())
    assert stored is not None
    assert (stored["title"], stored["version"]) == ("calm", 1)


def test_a_subscribed_write_hook_hears_only_its_entities(
    qiao_client: GraphQLClient, probe: WarrantyProbe
) -> None:
    qiao_client.data('mutation { createAccount(input: {name: "常州轴承"}) { id } }')
    assert probe.written == []
    _create_claim(qiao_client, code="wc-0200", title="异响")
    assert [w[0] for w in probe.written] == ["create"]


def test_write_hooks_reach_the_runtime_through_their_context(
    qiao_runtime: Runtime, probe: WarrantyProbe, qiao_clock: Any
) -> None:
    records = qiao_runtime.records
    _write(qiao_runtime, lambda ctx: records.create(ctx, "warranty_claim", {"code": "WC-3"}))
    (context,) = probe.contexts
    assert context.runtime is qiao_runtime
    assert context.records is records
    assert context.catalog is qiao_runtime.current()
    qiao_clock.set(dt.datetime(2026, 5, 1, 9, 30, tzinfo=dt.UTC))
    assert context.now() == dt.datetime(2026, 5, 1, 9, 30, tzinfo=dt.UTC)


def test_write_hooks_run_in_load_order_with_wrappers_around_them(
    bare_runtime: Callable[..., Runtime],
) -> None:
    heard: list[str] = []

    def before(name: str) -> Callable[..., None]:
        def hook(entity: EntityDef) -> None:
            heard.append(f"{name}:{entity.name}")
            if name == "late" and entity.name == "team":
                raise BadUserInput("no teams today", field="name")

        return hook

    def around(entity: EntityDef) -> Any:
        heard.append(f"wrap:{entity.name}")
        try:
            return (yield)
        except BadUserInput as exc:
            heard.append(f"refused:{exc.message}")
            raise

    wrapper = type("Wrapper", (), {"__name__": "wrapper"})()
    wrapper.qiao_before_record_write = hookimpl(  # type: ignore[attr-defined]
        around, wrapper=True, specname="qiao_before_record_write"
    )
    runtime = bare_runtime(
        _named("early", qiao_before_record_write=before("early")),
        _named("late", qiao_before_record_write=before("late")),
        wrapper,
    )
    runtime.start()
    heard.clear()  # the records built-in manifests declare (calendars) were written by migrate
    records = runtime.records
    _write(
        runtime,
        lambda ctx: records.create(ctx, "user", {"username": "wang.wu", "display_name": "王五"}),
    )
    with pytest.raises(BadUserInput, match="no teams today"):
        _write(runtime, lambda ctx: records.create(ctx, "team", {"name": "华东"}))
    assert heard == [
        "wrap:user",
        "early:user",
        "late:user",
        "wrap:team",
        "early:team",
        "late:team",
        "refused:no teams today",
    ]


# -- Start-up -----------------------------------------------------------------------------


def test_startup_is_called_once_with_the_runtime_before_serving(
    qiao_server: Any, qiao_runtime: Runtime, probe: WarrantyProbe
) -> None:
    assert len(probe.started) == 1
    assert probe.started[0] is qiao_runtime
    assert httpx.get(f"{qiao_server.url}/healthz").status_code == 200
    assert len(probe.started) == 1


def test_a_failing_startup_stops_the_app_naming_the_plugin(
    bare_runtime: Callable[..., Runtime],
) -> None:
    def refuse() -> None:
        raise OSError("cannot reach the warranty archive")

    runtime = bare_runtime(_named("archive", qiao_startup=refuse))
    with pytest.raises(ConfigurationError) as caught:
        _serve_lifespan(create_app(runtime))
    assert caught.value.message == (
        "plugin 'archive' failed in qiao_startup: cannot reach the warranty archive"
    )


# -- CLI commands -------------------------------------------------------------------------


@pytest.fixture
def deployment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Path]:
    """``deployment(**plugins)``: a qiao.toml enabling crm and these installed plugin modules.

    The CLI's own command table is restored afterwards.
    """
    for name in ("QIAO_CONFIG", "QIAO_PLUGINS", "QIAO_DATABASE_URL", pluginmanager.BLOCK_ENV):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(cli_main.cli, "commands", dict(cli_main.cli.commands))
    installed = {
        n: ep
        for n, ep in pluginmanager.available_plugins().items()
        if n in {*pluginmanager.BUILTIN_PLUGINS, "crm"}
    }
    monkeypatch.setattr(pluginmanager, "available_plugins", lambda: installed)

    def _deployment(**plugins: ModuleType) -> Path:
        for name, module in plugins.items():
            monkeypatch.setitem(sys.modules, module.__name__, module)
            installed[name] = EntryPoint(name, module.__name__, ENTRY_POINT_GROUP)
        path = tmp_path / "qiao.toml"
        settings = {
            "database": {"url": "sqlite:///qiao.db"},
            "plugins": {"enabled": ["crm", *plugins]},
        }
        path.write_text(tomli_w.dumps(settings), encoding="utf-8")
        return path

    return _deployment


@pytest.fixture
def qiao(
    deployment: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Callable[..., tuple[int, str, str]]:
    """``qiao(*argv)``: the console entry point as a fresh ``qiao`` process runs it.

    Returns the exit code, stdout and stderr.
    """
    own = dict(cli_main.cli.commands)

    def _run(*argv: str) -> tuple[int, str, str]:
        monkeypatch.setattr(cli_main.cli, "commands", dict(own))
        with pytest.raises(SystemExit) as exited:
            cli_main.main(list(argv))
        out, err = capsys.readouterr()
        return int(exited.value.code or 0), out, err

    return _run


def test_plugin_commands_are_collected_with_their_plugin() -> None:
    plugins = create_plugins(["crm"], [warranty])
    assert plugins.cli_commands() == [(warranty.__name__, warranty.warranty_report)]


def test_a_plugin_command_runs_from_the_qiao_command(
    deployment: Callable[..., Path], qiao: Callable[..., tuple[int, str, str]]
) -> None:
    config = str(deployment(warranty=warranty))
    code, out, _ = qiao("--config", config, "--help")
    assert code == 0
    assert "warranty-report" in out
    code, out, err = qiao("--config", config, "warranty-report", "华东")
    assert (code, out, err) == (0, "warranty report: 华东\n", "")


def test_a_command_that_is_not_enabled_is_absent(
    deployment: Callable[..., Path], qiao: Callable[..., tuple[int, str, str]]
) -> None:
    config = str(deployment())
    code, _, err = qiao("--config", config, "warranty-report", "华东")
    assert code == 2
    assert "No such command 'warranty-report'" in err


def test_a_plugin_command_clashing_with_qiaos_is_refused(
    deployment: Callable[..., Path], qiao: Callable[..., tuple[int, str, str]]
) -> None:
    clash = ModuleType("qiao_test_plugin_clash")
    clash.qiao_cli_commands = hookimpl(  # type: ignore[attr-defined]
        lambda: [click.Command("init", callback=lambda: None)]
    )
    config = str(deployment(clash=clash))
    with pytest.raises(ConfigurationError) as caught:
        cli_main._add_plugin_commands(["--config", config])
    assert caught.value.message == "plugin 'clash' adds the command 'init', which exists already"
    code, _, err = qiao("--config", config, "init", "x")
    assert code == 1
    assert err == f"Error: {caught.value.message}\n"
