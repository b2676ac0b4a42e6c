"""The tag facet of a search (discovery.review.tag_counts_of_query): every way of counting agrees
with counting over the listed hit ids."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from discovery import review
from discovery.case import Case
from discovery.search import parse_query
from tests.conftest import private_copy


@pytest.fixture
def case(tmp_path: Path, demo_case_dir: Path) -> Iterator[Case]:
    opened = Case(private_copy(demo_case_dir, tmp_path / "case"))
    yield opened
    opened.close()


def _facet(case: Case, query: str, **kwargs: Any) -> dict[str, Any]:
    node = parse_query(case, query)
    ids = case.engine().all_ids(node)
    return review.tag_counts_of_query(case, node, len(ids), **kwargs).to_dict()


def _expected(case: Case, query: str) -> dict[str, Any]:
    return review.tag_counts(case, case.engine().all_ids(parse_query(case, query))).to_dict()


@pytest.mark.parametrize("query", ["whitewash", "refund OR logs", "NOT whitewash", "date:2024-09"])
def test_every_strategy_counts_what_the_hit_ids_count(case, query, monkeypatch):
    everything = [row[0] for row in case.db.execute("SELECT id FROM messages ORDER BY id")]
    review.add_tag(case, everything[::3], "hot", actor="t")
    review.add_tag(case, everything[::5], "privileged", actor="t")
    expected = _expected(case, query)
    assert _facet(case, query) == expected
    node = parse_query(case, query)
    assert _facet(case, query, ids=case.engine().all_ids(node)) == expected
    monkeypatch.setattr(review, "_RESTRICT_RATIO", 0)  # always the engine restricted to the tagged ids
    assert _facet(case, query) == expected
    monkeypatch.setattr(review, "_RESTRICT_RATIO", 10**9)  # always every hit id
    assert _facet(case, query) == expected


def test_no_tags_no_engine_pass(case, monkeypatch):
    monkeypatch.setattr(type(case.engine()), "all_ids", lambda *a: pytest.fail("the engine was asked"))
    node = parse_query(case, "whitewash")
    facet = review.tag_counts_of_query(case, node, 7)
    assert facet.tagged == 0 and facet.untagged == 7 and all(t.count == 0 for t in facet.tags)
