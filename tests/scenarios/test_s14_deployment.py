"""S14 on a deployment made by `qiao init --template law_firms --demo`, served by `qiao serve`.

The demo firm 鹏程律师事务所 (templates_market/law_firms/demo.yaml) as its people would use it,
over HTTP only, on SQLite and PostgreSQL: a lawyer opens a cleared matter; a partner's new
matter against a current client is a relative conflict, blocked until the conflicts officer
records the informed consent, then walled off from the lawyer; a bankruptcy date outside its
window is refused; time is billed in tenths at the engagement's rate.
"""

from __future__ import annotations

from pathlib import Path

from qiao.core.testing.client import GraphQLClient
from qiao.core.testing.deployment import Deployment
from qiao.core.testing.deployment import init as init_deployment

PEOPLE = ("admin", "he.lawyer", "chen.partner", "zhou.conflicts")
MATTERS = "{ matters { edges { node { id matterNumber status conflictStatus } } } }"


def _matters(client: GraphQLClient) -> dict[str, dict[str, str]]:
    return {e["node"]["matterNumber"]: e["node"] for e in client.data(MATTERS)["matters"]["edges"]}


def _token(site: Deployment, username: str) -> str:
    return site.run("token", "create", "--user", username, "--name", "s14").stdout.strip()


def test_the_demo_firm_works_its_matters_on_a_served_deployment(
    qiao_empty_database_url: str, tmp_path: Path
) -> None:
    site = init_deployment(
        tmp_path / "firm", qiao_empty_database_url, "--template", "law_firms", "--demo"
    )
    tokens = {name: _token(site, name) for name in PEOPLE}
    with site.serve() as served:
        clients = {name: GraphQLClient(served.url, token) for name, token in tokens.items()}
        try:
            _replay(clients)
        finally:
            for client in clients.values():
                client.close()


def _replay(clients: dict[str, GraphQLClient]) -> None:
    admin, he = clients["admin"], clients["he.lawyer"]
    partner, officer = clients["chen.partner"], clients["zhou.conflicts"]
    demo = _matters(he)
    labour = demo["PC-2026-LB-012"]
    assert (labour["status"], labour["conflictStatus"]) == ("INTAKE", "CLEAR")
    opened = he.data(
        "mutation($id: ID!) { updateMatter(id: $id, input: {status: OPEN}) { status openedOn } }",
        {"id": labour["id"]},
    )["updateMatter"]
    assert opened["status"] == "OPEN" and opened["openedOn"] is not None

    # A partner takes a lease dispute against the labour matter's client: relative.
    tenant = admin.data('mutation { createAccount(input: {name: "东莞华新仓储有限公司"}) { id } }')
    lease = partner.data(
        "mutation($input: MatterCreateInput!) { createMatter(input: $input) { id } }",
        {
            "input": {
                "matterNumber": "PC-2026-RE-031",
                "title": "华新仓储诉南粤物流仓库租赁纠纷",
                "clientId": tenant["createAccount"]["id"],
                "practiceArea": "REAL_ESTATE",
                "opposingParty": "广东省东莞南粤物流有限公司",
                "dispute": "仓库租赁",
                "responsibleLawyerId": _me(partner),
            }
        },
    )["createMatter"]["id"]
    found = officer.data(
        "mutation($m: ID!) { createConflictCheck(input: {matterId: $m}) { result } }", {"m": lease}
    )
    assert found == {"createConflictCheck": {"result": "RELATIVE"}}
    refused = partner.errors(
        "mutation($id: ID!) { updateMatter(id: $id, input: {status: OPEN}) { id } }", {"id": lease}
    )
    assert "第52条" in refused[0]["message"]
    waiver = {"matterId": lease, "consentSignedOn": "2026-03-03", "consentingParties": "华新仓储"}
    officer.data(
        "mutation($input: ConflictWaiverCreateInput!) "
        "{ createConflictWaiver(input: $input) { id } }",
        {"input": waiver},
    )
    partner.data(
        "mutation($id: ID!) { updateMatter(id: $id, input: {status: OPEN}) { id } }", {"id": lease}
    )
    # 何静 acts for 南粤物流: the walled lease matter is out of her sight on every path.
    assert "PC-2026-RE-031" not in _matters(he)
    assert "PC-2026-RE-031" in _matters(partner)
    searched = he.data('{ conflictSearch(name: "南粤物流") { matterId } }')["conflictSearch"]
    assert lease not in {hit["matterId"] for hit in searched}
    assert labour["id"] in {hit["matterId"] for hit in searched}

    # The demo bankruptcy: announced 16 March, so claims may close 15 April to 16 June.
    bankruptcy = demo["PC-2026-BK-003"]["id"]
    wrong = admin.errors(
        'mutation($id: ID!) { updateMatter(id: $id, input: {claimsDeadline: "2026-04-14"}) '
        "{ id } }",
        {"id": bankruptcy},
    )
    assert wrong[0]["extensions"]["field"] == "claimsDeadline"
    assert "第45条" in wrong[0]["message"] and "2026-04-15 至 2026-06-16" in wrong[0]["message"]

    # A quarter of an hour bills 0.3 h at the engagement's 2,500.00 an hour.
    patent = demo["PC-2026-IP-007"]["id"]
    entry = he.data(
        "mutation($input: TimeEntryCreateInput!) { createTimeEntry(input: $input) "
        "{ billedHours rate amount } }",
        {"input": {"matterId": patent, "workedOn": "2026-03-03", "hours": "0.25",
                   "description": "电话沟通诉讼策略"}},
    )  # fmt: skip
    assert entry["createTimeEntry"] == {"billedHours": "0.3", "rate": "2500.00", "amount": "750.00"}


def _me(client: GraphQLClient) -> str:
    return str(client.data("{ me { userId } }")["me"]["userId"])
