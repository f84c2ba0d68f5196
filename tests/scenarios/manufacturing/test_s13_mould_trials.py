"""S13: mould trials T0, T1 ... whose states each ask for their own fields, with a
notification to the trial engineer and the customer's owner at every change.

The template ships what the S13 mould factory built by hand: the entity ``mould_trial``,
its pipeline (图纸确认 -> 备料完成 -> 首件检验 -> 客户签样, or 未通过) and the rule
试模状态通知. A failed round is followed by a trial of the next round; the pass rate is
a count of trials by their ``passed`` formula. At each change the rule keeps one trial
report (PDF, its action ``render_document``), which shows the round, the state and the
fields each state asked for; the engineer reads it back among the trial's documents.
"""

from __future__ import annotations

import datetime as dt

from qiao.core.testing.client import GraphQLClient
from qiao.core.testing.worker import drain
from qiao.core.worker import Worker
from tests.scenarios.conftest import RecordingChannel

from .conftest import Story, create
from .documents import kept_documents, read_pdf

SHANGHAI = dt.timezone(dt.timedelta(hours=8))
MOVE = """mutation($id: ID!, $input: MouldTrialUpdateInput!) {
  updateMouldTrial(id: $id, input: $input) { status } }"""


def move(client: GraphQLClient, worker: Worker, trial: str, values: dict[str, str]) -> None:
    """A change of state, and the worker's pass seconds later that tells everyone of it."""
    client.data(MOVE, {"id": trial, "input": values})
    drain(worker)


class Reports:
    """The trial reports kept so far, as the trial engineer reads them."""

    def __init__(self, client: GraphQLClient) -> None:
        self.client = client
        self.seen: set[str] = set()

    def new_one(self, trial: str, *lines: str) -> str:
        """The one report kept since the last look, which must show ``lines``; its name."""
        kept = kept_documents(self.client, trial)
        (new,) = [doc for id_, doc in kept.items() if id_ not in self.seen]
        self.seen |= set(kept)
        assert new["template"] == "mould_trial_report"
        text = read_pdf(new)
        for line in ("试模报告", "模具编号：HT-M2609-017", "客户：昆山华通模具有限公司", *lines):
            assert line in text, line
        return new["filename"]


def test_trial_rounds_ask_for_their_fields_and_notify_each_change(
    story: Story,
    wecom: RecordingChannel,
) -> None:
    story.replay.set(dt.datetime(2026, 9, 7, 8, 30, tzinfo=SHANGHAI))
    story.people.east_manager()
    story.people.user("lin", "林晓梅", "trial_engineer")
    lin, xu = story.client_for("lin"), story.client_for("xu")
    reports = Reports(lin)
    customer = create(xu, "account", {"name": "昆山华通模具有限公司"})["id"]
    trial = {
        "title": "汽车门板注塑模试模",
        "mouldNumber": "HT-M2609-017",
        "customerId": customer,
        "machineNumber": "海天 MA3800 #7",
    }
    (refused,) = lin.errors(
        "mutation($input: MouldTrialCreateInput!) { createMouldTrial(input: $input) { id } }",
        {"input": trial},
    )
    assert refused["extensions"]["field"] == "drawingVersion"
    t0 = create(lin, "mould_trial", {**trial, "drawingVersion": "B"}, "id status trialRound")
    drain(story.worker)
    assert (t0["status"], t0["trialRound"]) == ("DRAWING_CONFIRMED", "T0")
    first = (
        "试模轮次：T0",
        "状态：图纸确认",
        "图纸版本：B",
        "试模工程师：林晓梅",
        "试模结论：进行中",
    )
    assert reports.new_one(t0["id"], *first, "机台号：海天 MA3800 #7") == (
        "试模报告-HT-M2609-017-T0-DRAWING_CONFIRMED.pdf"
    )

    (missing,) = lin.errors(MOVE, {"id": t0["id"], "input": {"status": "MATERIALS_READY"}})
    assert missing["extensions"]["field"] == "material"
    assert (
        missing["message"]
        == "entering MATERIALS_READY needs material, trial_on (pipeline mould_trials)"
    )
    ready = {"status": "MATERIALS_READY", "material": "PP+EPDM-T20", "trialOn": "2026-09-08"}
    move(lin, story.worker, t0["id"], ready)
    reports.new_one(t0["id"], "状态：备料完成", "材料牌号：PP+EPDM-T20", "试模日期：2026-09-08")
    (skipped,) = lin.errors(MOVE, {"id": t0["id"], "input": {"status": "CUSTOMER_SIGN_OFF"}})
    assert skipped["extensions"]["allowed"] == ["FIRST_ARTICLE_INSPECTION", "FAILED"]
    inspect = {
        "status": "FIRST_ARTICLE_INSPECTION",
        "inspectionResult": "卡扣处缩痕 0.3 mm，超差",
        "cycleSeconds": "48.5",
    }
    move(lin, story.worker, t0["id"], inspect)
    reports.new_one(
        t0["id"],
        "状态：首件检验",
        "首件检验结果：卡扣处缩痕 0.3 mm，超差",
        "成型周期(秒)：48.5",
    )
    move(lin, story.worker, t0["id"], {"status": "FAILED", "failureReason": "缩痕超差"})
    reports.new_one(t0["id"], "状态：未通过", "未通过原因：缩痕超差", "试模结论：未通过")

    t1 = create(lin, "mould_trial", {**trial, "drawingVersion": "C", "trialRound": "T1"})
    drain(story.worker)
    assert reports.new_one(t1["id"], "试模轮次：T1", "状态：图纸确认", "图纸版本：C") == (
        "试模报告-HT-M2609-017-T1-DRAWING_CONFIRMED.pdf"
    )
    for step, shows in (
        (ready, "状态：备料完成"),
        ({**inspect, "inspectionResult": "尺寸合格", "cycleSeconds": "46.0"}, "状态：首件检验"),
    ):
        move(lin, story.worker, t1["id"], step)
        reports.new_one(t1["id"], "试模轮次：T1", shows)
    signing = {"status": "CUSTOMER_SIGN_OFF", "signedOffBy": "华通 质量部 顾晓东"}
    move(lin, story.worker, t1["id"], signing)
    signed = reports.new_one(
        t1["id"], "试模轮次：T1", "状态：客户签样", "图纸版本：C", "首件检验结果：尺寸合格",
        "客户签样人：华通 质量部 顾晓东", "试模结论：通过",
    )  # fmt: skip
    assert signed == "试模报告-HT-M2609-017-T1-CUSTOMER_SIGN_OFF.pdf"
    # One report per change of state, each kept with its trial; another pass of the worker
    # (a delivery seen again) keeps no more.
    drain(story.worker)
    assert lin.data("{ documents { totalCount } }")["documents"]["totalCount"] == 8
    assert len(kept_documents(lin, t0["id"])) == 4 and len(kept_documents(lin, t1["id"])) == 4

    expected = [
        "试模 HT-M2609-017 T0：图纸确认",
        "试模 HT-M2609-017 T0：备料完成",
        "试模 HT-M2609-017 T0：首件检验",
        "试模 HT-M2609-017 T0：未通过",
        "试模 HT-M2609-017 T1：图纸确认",
        "试模 HT-M2609-017 T1：备料完成",
        "试模 HT-M2609-017 T1：首件检验",
        "试模 HT-M2609-017 T1：客户签样",
    ]
    for username, client in (("lin", lin), ("xu", xu)):
        told = client.nodes("{ myNotifications(first: 50) { edges { node { title kind } } } }")
        assert sorted(n["title"] for n in told) == sorted(expected)
        assert {n["kind"] for n in told} == {"mould_trial"}
        pushed = sorted(
            title for owner, title in wecom.pushed if owner == story.people.ids[username]
        )
        assert pushed == sorted(expected)

    rate = lin.data(
        "{ all: mouldTrials { totalCount } passed: mouldTrials(filter: {passed: {eq: true}}) "
        "{ totalCount edges { node { trialRound signedOffBy } } } }"
    )
    assert rate["all"]["totalCount"] == 2
    assert rate["passed"] == {
        "totalCount": 1,
        "edges": [{"node": {"trialRound": "T1", "signedOffBy": "华通 质量部 顾晓东"}}],
    }
