"""A fixed golden table: queries over the Lark fixture export and the exact messages each must hit.

Each row was checked by reading the fixture's texts (see fixtures/lark.md). A difference is a bug in
the analyzer, parser or engine, to be fixed there, never by editing the expected ids to match.
"""

from pathlib import Path

import pytest

from discovery.case import Case
from discovery.ingest import ingest
from discovery.search import search

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "lark"

WHITEWASH = {"om_64cf6478", "om_4050ef99", "om_1bfa2b12", "om_f1edfcfe"}
WHITEWASH_FAMILY = WHITEWASH | {"om_89492e45", "om_b2729583", "om_2e2d6a29", "om_720a957d", "om_f17810e4"}
XIBAI = {"om_86dd20bf", "om_6dfb56eb", "om_59180961", "om_32d98e7d"}
DEBUG_LOGS = {"om_bef0ebbd", "om_51adbf51", "om_1be02fbc"}
GOLDEN = [
    ("whitewash", WHITEWASH),  # whole words: not whitewashed / whitewashing
    ("WHITEWASH", WHITEWASH),  # case folded
    ("whitewash*", WHITEWASH_FAMILY),
    ('"white wash"', {"om_a14698df"}),  # "white-wash", not "white-washing" nor "white washed"
    ("洗白", XIBAI),  # a CJK term inside unspaced sentences
    ("清理", {"om_bef0ebbd", "om_51adbf51"}),
    ('"debug logs"', DEBUG_LOGS),  # mixed script: "上线前把debug logs清理掉" included
    ("上线 AND logs", {"om_bef0ebbd"}),
    ("whitewash OR 洗白", WHITEWASH | XIBAI),
    ("whitewash* AND NOT Priya", WHITEWASH_FAMILY - {"om_f1edfcfe"}),
    ("refund w/3 table", {"om_1bfa2b12"}),
    ("retention pre/2 days", {"om_85084caf"}),
    ('sender:"Mark Ellison" refund', {"om_64cf6478", "om_1bfa2b12", "om_b2729583"}),
    ('conversation:"Atlas 产品组 / Atlas Product Team" AND 洗白', XIBAI - {"om_6dfb56eb"}),
    ("Q3_audit_report.final.xlsx", {"om_56e71036", "om_8757db22", "om_0968c67d"}),  # an exact file name
    ("scrub~", {"om_0f2f337d"}),
    ("legal date:2024-09-24", {"om_5871fb56"}),  # dates are UTC days
    ("legal date:2024-09-25", set()),
    ('"this message was recalled"', set()),  # recall placeholders never produce hits
    ("is:deleted", {"om_e6809fb7", "om_9de37659", "om_93c68377", "om_b28f8583"}),
    ("kind:system", {"om_d2548b3c", "om_18344a32", "om_640d52d8", "om_45ac04c7", "om_5be545fb"}),
]


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    opened = Case(tmp_path_factory.mktemp("golden"), create=True)
    ingest(opened, [str(FIXTURES)])
    yield opened
    opened.close()


@pytest.mark.parametrize(("query", "expected"), GOLDEN, ids=[q for q, _ in GOLDEN])
def test_golden_query(case, query, expected):
    result = search(case, query, context=0, limit=1000)
    found = {hit.message["native_id"][:11] for hit in result.hits}
    assert found == expected
    assert result.total == len(expected)
