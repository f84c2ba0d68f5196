"""Demo data: a machine-tool distributor in the Yangtze River Delta, 恒通工业装备.

Seeded by ``qiao init --demo`` and ``qiao demo`` so that a new deployment
shows a believable pipeline at once: a sales region with two reps and a
service engineer, customers across Jiangsu, Zhejiang, Shanghai, Guangdong,
Shandong and Anhui, their buyers and plant managers, leads from trade shows
and WeChat, a price list, opportunities at every stage, two quotes, the
visits, calls and messages that moved them, service tickets, and two service
rules. Everything is fixed (names, amounts, dates), so screenshots, docs and
tests can rely on it.

Rows are ``(key, values)``; a value written ``"@key"`` is the id of the row
seeded earlier under that key, which is how the rows refer to each other.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from qiao.api import Conflict, Records, WriteContext

Row = tuple[str, Mapping[str, Any]]

TEAMS: Sequence[Row] = (
    ("t.east", {"name": "华东大区", "code": "EAST", "kind": "REGION", "region": "华东"}),
    (
        "t.suzhou",
        {"name": "苏州销售一组", "code": "EAST-SZ1", "kind": "TEAM", "parent": "@t.east"},
    ),
    ("t.service", {"name": "售后服务部", "code": "SERVICE", "kind": "TEAM", "region": "华东"}),
)

USERS: Sequence[Row] = (
    (
        "u.wang",
        {
            "username": "wang.jianguo",
            "display_name": "王建国",
            "email": "wang.jianguo@hengtong.example.com",
            "phone": "13862105518",
            "team": "@t.east",
        },
    ),
    (
        "u.li",
        {
            "username": "li.na",
            "display_name": "李娜",
            "email": "li.na@hengtong.example.com",
            "phone": "13915287734",
            "team": "@t.suzhou",
            "manager": "@u.wang",
        },
    ),
    (
        "u.zhang",
        {
            "username": "zhang.wei",
            "display_name": "张伟",
            "email": "zhang.wei@hengtong.example.com",
            "phone": "18651420096",
            "team": "@t.suzhou",
            "manager": "@u.wang",
        },
    ),
    (
        "u.chen",
        {
            "username": "chen.lei",
            "display_name": "陈磊",
            "email": "chen.lei@hengtong.example.com",
            "phone": "13771836025",
            "team": "@t.service",
            "manager": "@u.wang",
        },
    ),
)


def _account(
    name: str,
    code: str,
    province: str,
    city: str,
    phone: str,
    industry: str,
    owner: str,
    **more: Any,
) -> dict[str, Any]:
    return {
        "name": name,
        "unified_credit_code": code,
        "province": province,
        "city": city,
        "phone": phone,
        "industry": industry,
        "owner": owner,
        **more,
    }


ACCOUNTS: Sequence[Row] = (
    (
        "a.jinggong",
        _account(
            "苏州精工机械有限公司",
            "91320500MA1MX3K72Q",
            "江苏",
            "苏州",
            "+86 512 6588 1234",
            "通用设备制造",
            "@u.li",
            address="苏州工业园区星湖街 328 号",
            employees=420,
            annual_revenue="186000000.00",
            website="https://jinggong.example.com",
        ),
    ),
    (
        "a.kunshan",
        _account(
            "昆山精工精密部件有限公司",
            "91320583MA1Q7W4F9T",
            "江苏",
            "昆山",
            "+86 512 5760 3318",
            "通用设备制造",
            "@u.li",
            parent="@a.jinggong",
            employees=150,
        ),
    ),
    (
        "a.huayu",
        _account(
            "无锡华宇精密模具有限公司",
            "913202007040283919",
            "江苏",
            "无锡",
            "+86 510 8522 3367",
            "模具制造",
            "@u.zhang",
            address="无锡市新吴区长江路 16 号",
            employees=260,
            annual_revenue="92000000.00",
        ),
    ),
    (
        "a.hengli",
        _account(
            "常州恒力液压设备有限公司",
            "91320400MA1P8R2Q5F",
            "江苏",
            "常州",
            "+86 519 8598 2210",
            "液压件制造",
            "@u.zhang",
            employees=310,
        ),
    ),
    (
        "a.donghai",
        _account(
            "宁波东海汽车零部件有限公司",
            "91330200MA2H4T6L0B",
            "浙江",
            "宁波",
            "+86 574 8690 1158",
            "汽车零部件",
            "@u.li",
            employees=880,
            annual_revenue="540000000.00",
        ),
    ),
    (
        "a.tiancheng",
        _account(
            "杭州天成自动化科技有限公司",
            "91330100MA27Y8N323",
            "浙江",
            "杭州",
            "+86 571 8877 4402",
            "工业自动化",
            "@u.zhang",
            kind="PARTNER",
        ),
    ),
    (
        "a.ruian",
        _account(
            "温州瑞安阀门制造有限公司",
            "91330381MA2CQ1B5XT",
            "浙江",
            "温州",
            "+86 577 6583 9906",
            "阀门制造",
            "@u.zhang",
            kind="PROSPECT",
            employees=95,
        ),
    ),
    (
        "a.pujiang",
        _account(
            "上海浦江重工机械有限公司",
            "91310115MA1K4B7G20",
            "上海",
            "上海",
            "+86 21 5855 7719",
            "重型机械",
            "@u.wang",
            address="上海市浦东新区川沙路 1588 号",
            employees=1250,
            annual_revenue="1320000000.00",
        ),
    ),
    (
        "a.jinda",
        _account(
            "佛山顺德金达五金制品有限公司",
            "91440606MA4W2E8D7X",
            "广东",
            "佛山",
            "+86 757 2238 6650",
            "五金制品",
            "@u.zhang",
            employees=210,
        ),
    ),
    (
        "a.changan",
        _account(
            "东莞长安精密电子有限公司",
            "91441900MA4UJ9P61K",
            "广东",
            "东莞",
            "+86 769 8553 1207",
            "电子制造",
            "@u.li",
            kind="PROSPECT",
        ),
    ),
    (
        "a.haichuan",
        _account(
            "青岛海川船舶配件有限公司",
            "91370211MA3C6R1T4H",
            "山东",
            "青岛",
            "+86 532 8666 0938",
            "船舶配件",
            "@u.wang",
            employees=340,
        ),
    ),
    (
        "a.jinling",
        _account(
            "南京金陵工业自动化经销有限公司",
            "91320100MA1X2D6C3E",
            "江苏",
            "南京",
            "+86 25 8432 6605",
            "设备经销",
            "@u.wang",
            kind="DEALER",
        ),
    ),
)

CONTACTS: Sequence[Row] = (
    (
        "c.zhou",
        {
            "name": "周海峰",
            "title": "设备部部长",
            "mobile": "13862231456",
            "account": "@a.jinggong",
            "wechat": "zhouhf_sz",
            "owner": "@u.li",
        },
    ),
    (
        "c.xu",
        {
            "name": "徐丽",
            "title": "采购经理",
            "mobile": "13962578803",
            "account": "@a.jinggong",
            "email": "xuli@jinggong.example.com",
            "owner": "@u.li",
        },
    ),
    (
        "c.gu",
        {
            "name": "顾晓东",
            "title": "生产副总",
            "mobile": "13584910277",
            "account": "@a.kunshan",
            "owner": "@u.li",
        },
    ),
    (
        "c.qian",
        {
            "name": "钱国平",
            "title": "总经理",
            "mobile": "13806173390",
            "account": "@a.huayu",
            "owner": "@u.zhang",
        },
    ),
    (
        "c.sun",
        {
            "name": "孙静",
            "title": "采购主管",
            "mobile": "15061852247",
            "account": "@a.huayu",
            "wechat": "sunjing_wx",
            "owner": "@u.zhang",
        },
    ),
    (
        "c.shen",
        {
            "name": "沈志强",
            "title": "技术总监",
            "mobile": "13915063381",
            "account": "@a.hengli",
            "owner": "@u.zhang",
        },
    ),
    (
        "c.ye",
        {
            "name": "叶明",
            "title": "设备科科长",
            "mobile": "13968227154",
            "account": "@a.donghai",
            "owner": "@u.li",
        },
    ),
    (
        "c.lin",
        {
            "name": "林晓燕",
            "title": "采购经理",
            "mobile": "13857412096",
            "account": "@a.donghai",
            "email": "linxy@donghai.example.com",
            "owner": "@u.li",
        },
    ),
    (
        "c.fang",
        {
            "name": "方俊",
            "title": "项目经理",
            "mobile": "13705718842",
            "account": "@a.tiancheng",
            "owner": "@u.zhang",
        },
    ),
    (
        "c.huang",
        {
            "name": "黄志华",
            "title": "厂长",
            "mobile": "13857736619",
            "account": "@a.ruian",
            "owner": "@u.zhang",
        },
    ),
    (
        "c.lu",
        {
            "name": "陆文斌",
            "title": "设备总监",
            "mobile": "13916685520",
            "account": "@a.pujiang",
            "email": "luwb@pujiang.example.com",
            "owner": "@u.wang",
        },
    ),
    (
        "c.he",
        {
            "name": "何嘉欣",
            "title": "采购专员",
            "mobile": "13726359918",
            "account": "@a.jinda",
            "wechat": "hejx_fs",
            "owner": "@u.zhang",
        },
    ),
    (
        "c.liang",
        {
            "name": "梁伟明",
            "title": "工程部经理",
            "mobile": "13925871134",
            "account": "@a.changan",
            "owner": "@u.li",
        },
    ),
    (
        "c.song",
        {
            "name": "宋立新",
            "title": "总工程师",
            "mobile": "13863902275",
            "account": "@a.haichuan",
            "owner": "@u.wang",
        },
    ),
    (
        "c.ma",
        {
            "name": "马晓军",
            "title": "总经理",
            "mobile": "13851760043",
            "account": "@a.jinling",
            "owner": "@u.wang",
        },
    ),
)

LEADS: Sequence[Row] = (
    (
        "l.cimt",
        {
            "name": "刘振宇",
            "company": "嘉兴华亿紧固件有限公司",
            "mobile": "13957306618",
            "province": "浙江",
            "city": "嘉兴",
            "industry": "紧固件",
            "source": "TRADE_SHOW",
            "status": "NEW",
            "description": "CIMT 机床展到展台咨询五轴加工中心，希望年底前看样机。",
            "owner": "@u.li",
        },
    ),
    (
        "l.web",
        {
            "name": "赵敏",
            "company": "扬州恒远机电设备有限公司",
            "mobile": "13952741180",
            "email": "zhaomin@hengyuan.example.com",
            "province": "江苏",
            "city": "扬州",
            "source": "WEB_FORM",
            "status": "CONTACTED",
            "description": "官网留言：需要 2 台数控车床的报价。",
            "owner": "@u.zhang",
        },
    ),
    (
        "l.wechat",
        {
            "name": "吴涛",
            "company": "绍兴越州纺织机械厂",
            "mobile": "13735288806",
            "province": "浙江",
            "city": "绍兴",
            "source": "WECHAT",
            "status": "QUALIFIED",
            "description": "公众号咨询液压站改造，预算约 20 万。",
            "owner": "@u.zhang",
        },
    ),
    (
        "l.hotline",
        {
            "name": "郑凯",
            "company": "盐城东方汽配有限公司",
            "mobile": "13815582267",
            "province": "江苏",
            "city": "盐城",
            "source": "HOTLINE",
            "status": "NEW",
            "owner": "@u.li",
        },
    ),
    (
        "l.referral",
        {
            "name": "冯雪",
            "company": "马鞍山华菱重工配套有限公司",
            "mobile": "13955513349",
            "province": "安徽",
            "city": "马鞍山",
            "source": "REFERRAL",
            "status": "DISQUALIFIED",
            "description": "由青岛海川介绍；已在别家采购，暂无需求。",
            "owner": "@u.wang",
        },
    ),
    (
        "l.hefei",
        {
            "name": "唐国强",
            "company": "合肥江淮智能装备有限公司",
            "mobile": "13866702251",
            "province": "安徽",
            "city": "合肥",
            "source": "TRADE_SHOW",
            "status": "CONVERTED",
            "description": "合肥智能制造展获取，已转为商机。",
            "owner": "@u.wang",
        },
    ),
)

PRODUCTS: Sequence[Row] = (
    (
        "p.vmc850",
        {
            "name": "立式加工中心 VMC850",
            "sku": "HT-VMC-850",
            "category": "数控机床",
            "unit": "台",
            "list_price": "368000.00",
        },
    ),
    (
        "p.ck6150",
        {
            "name": "数控车床 CK6150",
            "sku": "HT-CK-6150",
            "category": "数控机床",
            "unit": "台",
            "list_price": "185000.00",
        },
    ),
    (
        "p.5axis",
        {
            "name": "五轴联动加工中心 UMC650",
            "sku": "HT-UMC-650",
            "category": "数控机床",
            "unit": "台",
            "list_price": "1280000.00",
            "is_new": True,
        },
    ),
    (
        "p.bt40",
        {
            "name": "BT40 电主轴 12000rpm",
            "sku": "HT-SPD-BT40",
            "category": "主轴部件",
            "unit": "件",
            "list_price": "42000.00",
        },
    ),
    (
        "p.hyd63",
        {
            "name": "液压站 63L",
            "sku": "HT-HYD-63L",
            "category": "液压系统",
            "unit": "套",
            "list_price": "24800.00",
        },
    ),
    (
        "p.servo",
        {
            "name": "交流伺服电机 1.5kW",
            "sku": "HT-SRV-1K5",
            "category": "伺服驱动",
            "unit": "台",
            "list_price": "3650.00",
        },
    ),
    (
        "p.drive",
        {
            "name": "伺服驱动器 1.5kW",
            "sku": "HT-DRV-1K5",
            "category": "伺服驱动",
            "unit": "台",
            "list_price": "2980.00",
        },
    ),
    (
        "p.lube",
        {
            "name": "自动润滑泵 2L",
            "sku": "HT-LUB-2L",
            "category": "配件",
            "unit": "个",
            "list_price": "860.00",
        },
    ),
    (
        "p.care",
        {
            "name": "年度维保服务（单台）",
            "sku": "HT-SVC-CARE",
            "category": "服务",
            "unit": "年",
            "list_price": "18000.00",
        },
    ),
    (
        "p.old",
        {
            "name": "数控车床 CK6140（停产）",
            "sku": "HT-CK-6140",
            "category": "数控机床",
            "unit": "台",
            "list_price": "152000.00",
            "is_active": False,
        },
    ),
)

OPPORTUNITIES: Sequence[Row] = (
    (
        "o.jinggong",
        {
            "name": "苏州精工 二期车间 VMC850 ×6",
            "account": "@a.jinggong",
            "contact": "@c.zhou",
            "stage": "NEGOTIATION",
            "amount": "2080000.00",
            "probability": 70,
            "close_date": "2026-12-20",
            "owner": "@u.li",
        },
    ),
    (
        "o.kunshan",
        {
            "name": "昆山精工 电主轴备件年度采购",
            "account": "@a.kunshan",
            "contact": "@c.gu",
            "stage": "PROPOSAL",
            "amount": "336000.00",
            "probability": 50,
            "close_date": "2027-01-15",
            "owner": "@u.li",
        },
    ),
    (
        "o.huayu",
        {
            "name": "无锡华宇 五轴加工中心",
            "account": "@a.huayu",
            "contact": "@c.qian",
            "stage": "NEEDS_ANALYSIS",
            "amount": "1280000.00",
            "probability": 30,
            "close_date": "2027-03-31",
            "owner": "@u.zhang",
        },
    ),
    (
        "o.hengli",
        {
            "name": "常州恒力 液压站改造",
            "account": "@a.hengli",
            "contact": "@c.shen",
            "stage": "CLOSED_WON",
            "amount": "198400.00",
            "probability": 100,
            "close_date": "2026-09-28",
            "owner": "@u.zhang",
        },
    ),
    (
        "o.donghai",
        {
            "name": "宁波东海 数控车床产线 CK6150 ×10",
            "account": "@a.donghai",
            "contact": "@c.lin",
            "stage": "PROPOSAL",
            "amount": "1750000.00",
            "probability": 45,
            "close_date": "2027-02-28",
            "owner": "@u.li",
        },
    ),
    (
        "o.tiancheng",
        {
            "name": "杭州天成 伺服系统集成项目",
            "account": "@a.tiancheng",
            "contact": "@c.fang",
            "stage": "QUALIFICATION",
            "amount": "265000.00",
            "probability": 10,
            "close_date": "2027-04-30",
            "owner": "@u.zhang",
        },
    ),
    (
        "o.pujiang",
        {
            "name": "上海浦江 维保服务续约 2027",
            "account": "@a.pujiang",
            "contact": "@c.lu",
            "stage": "CLOSED_WON",
            "amount": "216000.00",
            "probability": 100,
            "close_date": "2026-10-31",
            "owner": "@u.wang",
        },
    ),
    (
        "o.jinda",
        {
            "name": "佛山金达 VMC850 ×2",
            "account": "@a.jinda",
            "contact": "@c.he",
            "stage": "CLOSED_LOST",
            "amount": "720000.00",
            "probability": 0,
            "close_date": "2026-08-15",
            "owner": "@u.zhang",
        },
    ),
    (
        "o.haichuan",
        {
            "name": "青岛海川 大型零件加工设备",
            "account": "@a.haichuan",
            "contact": "@c.song",
            "stage": "NEGOTIATION",
            "amount": "860000.00",
            "probability": 65,
            "close_date": "2026-12-31",
            "owner": "@u.wang",
        },
    ),
    (
        "o.jinling",
        {
            "name": "南京金陵 2027 年度经销协议",
            "account": "@a.jinling",
            "contact": "@c.ma",
            "stage": "NEEDS_ANALYSIS",
            "amount": "3500000.00",
            "probability": 40,
            "close_date": "2027-01-31",
            "owner": "@u.wang",
        },
    ),
)

ACTIVITIES: Sequence[Row] = (
    (
        "v.1",
        {
            "kind": "VISIT",
            "channel": "IN_PERSON",
            "subject": "二期车间现场勘察",
            "summary": "与周部长确认 6 台 VMC850 的布局与电力条件，客户关注交期与培训。",
            "occurred_at": "2026-10-12T10:00:00+08:00",
            "account": "@a.jinggong",
            "contact": "@c.zhou",
            "opportunity": "@o.jinggong",
            "owner": "@u.li",
        },
    ),
    (
        "v.2",
        {
            "kind": "MESSAGE",
            "channel": "WECHAT",
            "subject": "发送报价单 V2",
            "summary": "微信发送第二版报价，含三年维保，徐经理表示本周内回复。",
            "occurred_at": "2026-11-03T16:20:00+08:00",
            "account": "@a.jinggong",
            "contact": "@c.xu",
            "opportunity": "@o.jinggong",
            "owner": "@u.li",
        },
    ),
    (
        "v.3",
        {
            "kind": "CALL",
            "channel": "PHONE",
            "subject": "价格谈判",
            "summary": "客户希望单价降至 33 万，已申请王总特批。",
            "occurred_at": "2026-11-18T09:30:00+08:00",
            "account": "@a.jinggong",
            "contact": "@c.xu",
            "opportunity": "@o.jinggong",
            "owner": "@u.li",
        },
    ),
    (
        "v.4",
        {
            "kind": "VISIT",
            "channel": "IN_PERSON",
            "subject": "五轴加工演示",
            "summary": "邀请钱总到苏州展厅观看 UMC650 试切，客户带来模具样件。",
            "occurred_at": "2026-10-28T14:00:00+08:00",
            "account": "@a.huayu",
            "contact": "@c.qian",
            "opportunity": "@o.huayu",
            "owner": "@u.zhang",
        },
    ),
    (
        "v.5",
        {
            "kind": "MESSAGE",
            "channel": "WECOM",
            "subject": "验收资料",
            "summary": "企业微信发送液压站验收报告与保修卡。",
            "occurred_at": "2026-10-05T11:10:00+08:00",
            "account": "@a.hengli",
            "contact": "@c.shen",
            "opportunity": "@o.hengli",
            "owner": "@u.zhang",
        },
    ),
    (
        "v.6",
        {
            "kind": "CALL",
            "channel": "PHONE",
            "subject": "产线需求确认",
            "summary": "林经理确认 10 台车床分两批到货，需要提供节拍测算。",
            "occurred_at": "2026-11-10T15:00:00+08:00",
            "account": "@a.donghai",
            "contact": "@c.lin",
            "opportunity": "@o.donghai",
            "owner": "@u.li",
        },
    ),
    (
        "v.7",
        {
            "kind": "MEETING",
            "channel": "IN_PERSON",
            "subject": "维保续约签约",
            "summary": "与陆总签订 2027 年维保合同，共 12 台设备。",
            "occurred_at": "2026-10-30T10:30:00+08:00",
            "account": "@a.pujiang",
            "contact": "@c.lu",
            "opportunity": "@o.pujiang",
            "owner": "@u.wang",
        },
    ),
    (
        "v.8",
        {
            "kind": "MESSAGE",
            "channel": "WECHAT",
            "subject": "输单回访",
            "summary": "客户选择了日系品牌，主要原因是交期；保持联系。",
            "occurred_at": "2026-08-20T17:45:00+08:00",
            "account": "@a.jinda",
            "contact": "@c.he",
            "opportunity": "@o.jinda",
            "owner": "@u.zhang",
        },
    ),
    (
        "v.9",
        {
            "kind": "EMAIL",
            "channel": "EMAIL",
            "subject": "经销政策说明",
            "summary": "发送 2027 年经销返点政策与区域保护条款。",
            "occurred_at": "2026-11-12T09:00:00+08:00",
            "account": "@a.jinling",
            "contact": "@c.ma",
            "opportunity": "@o.jinling",
            "owner": "@u.wang",
        },
    ),
    (
        "v.10",
        {
            "kind": "CALL",
            "channel": "PHONE",
            "subject": "线索首次联系",
            "summary": "赵女士确认需要 CK6150 两台，下周安排拜访。",
            "occurred_at": "2026-11-20T10:15:00+08:00",
            "lead": "@l.web",
            "owner": "@u.zhang",
        },
    ),
)

TICKETS: Sequence[Row] = (
    (
        "k.1",
        {
            "subject": "VMC850 主轴高速异响",
            "description": "主轴 8000rpm 以上出现异响，已停机待检。",
            "status": "IN_PROGRESS",
            "priority": "HIGH",
            "serial_number": "VMC850-2024-0317",
            "account": "@a.pujiang",
            "contact": "@c.lu",
            "product": "@p.vmc850",
            "owner": "@u.chen",
        },
    ),
    (
        "k.2",
        {
            "subject": "液压站油温过高报警",
            "description": "夏季连续运行 4 小时后油温报警，疑似冷却器堵塞。",
            "status": "RESOLVED",
            "priority": "NORMAL",
            "serial_number": "HYD63-2026-0088",
            "account": "@a.hengli",
            "contact": "@c.shen",
            "product": "@p.hyd63",
            "owner": "@u.chen",
            "resolved_at": "2026-10-09T16:00:00+08:00",
        },
    ),
    (
        "k.3",
        {
            "subject": "伺服驱动器 AL.16 报警",
            "description": "X 轴驱动器上电报警 AL.16，生产线停线。",
            "status": "OPEN",
            "priority": "URGENT",
            "serial_number": "DRV1K5-2025-1204",
            "account": "@a.donghai",
            "contact": "@c.ye",
            "product": "@p.drive",
            "owner": "@u.chen",
        },
    ),
)

QUOTES: Sequence[Row] = (
    (
        "q.jinggong",
        {
            "name": "苏州精工 VMC850 ×6 报价",
            "opportunity": "@o.jinggong",
            "account": "@a.jinggong",
            "product": "@p.vmc850",
            "quantity": 6,
            "list_price": "2208000.00",
            "quoted_price": "2080000.00",
            "status": "APPROVED",
            "valid_until": "2026-12-31",
            "owner": "@u.li",
        },
    ),
    (
        "q.kunshan",
        {
            "name": "昆山精工 电主轴备件报价",
            "opportunity": "@o.kunshan",
            "account": "@a.kunshan",
            "list_price": "336000.00",
            "quoted_price": "326000.00",
            "valid_until": "2027-01-15",
            "owner": "@u.li",
        },
    ),
)

#: Entities in the order they are seeded: every "@key" names a row seeded before it.
PLAN: Sequence[tuple[str, Sequence[Row]]] = (
    ("team", TEAMS),
    ("user", USERS),
    ("account", ACCOUNTS),
    ("contact", CONTACTS),
    ("lead", LEADS),
    ("product", PRODUCTS),
    ("opportunity", OPPORTUNITIES),
    ("quote", QUOTES),
    ("activity", ACTIVITIES),
    ("ticket", TICKETS),
)


#: Who does what in the demo (docs/permissions.md): sign in as them to see the rules at work.
ROLES: Sequence[tuple[str, str]] = (
    ("u.wang", "sales_manager"),
    ("u.li", "sales_rep"),
    ("u.zhang", "sales_rep"),
    ("u.chen", "service_engineer"),
)


#: Two service rules (docs/automation.md), so the demo shows automation at work: the service
#: engineers hear of an urgent ticket at once, and a ticket nobody accepts in two hours goes to
#: its owner's manager.
RULES: Sequence[Row] = (
    (
        "r.urgent",
        {
            "name": "紧急工单通知服务工程师",
            "entity": "ticket",
            "trigger": {"created": {}},
            "condition": 'priority = "URGENT"',
            "actions": [
                {
                    "notify": {
                        "roles": ["service_engineer"],
                        "title": "紧急工单：{subject}",
                        "body": "客户 {account.name}，设备序列号 {serial_number}",
                        "kind": "ticket_urgent",
                    }
                }
            ],
        },
    ),
    (
        "r.escalate",
        {
            "name": "两小时未受理升级主管",
            "entity": "ticket",
            "trigger": {"after": {"field": "created_at", "minutes": 120}},
            "condition": 'status = "OPEN"',
            "actions": [{"escalate": {"to": "manager", "title": "工单超时未受理：{subject}"}}],
        },
    ),
)


def seed(records: Records, context: WriteContext) -> None:
    """Create the demo records in ``context``'s transaction; refuses a second run."""
    marker = ACCOUNTS[0][1]["unified_credit_code"]
    found = records.list(
        context.connection, "account", filter={"unified_credit_code": {"eq": marker}}, first=1
    )
    if found.records:
        raise Conflict("the CRM demo data is there already (it can be seeded once)")
    ids: dict[str, str] = {}
    for entity, rows in PLAN:
        for key, values in rows:
            resolved = {name: _resolve(value, ids) for name, value in values.items()}
            ids[key] = records.create(context, entity, resolved)["id"]
    roles = {
        r["name"]: r["id"] for r in records.list(context.connection, "role", first=500).records
    }
    for user, role in ROLES:
        if role in roles:  # the CRM's roles, installed by 'qiao migrate'
            records.create(context, "role_assignment", {"user": ids[user], "role": roles[role]})
    if "service_engineer" in roles:  # a rule that notifies a role needs the role
        for _, rule in RULES:
            records.create(context, "automation_rule", dict(rule))


def _resolve(value: Any, ids: Mapping[str, str]) -> Any:
    if isinstance(value, str) and value.startswith("@"):
        return ids[value[1:]]
    return value
