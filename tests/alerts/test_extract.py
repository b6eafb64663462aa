"""Extractors, normalisation and diffs: the pure core of change detection."""

import pytest

from alerts import diff, extract
from alerts.extract import ExtractError, Normalisation

PAGE = """<html><head><style>.price{color:red}</style><script>var t = Date.now();</script></head>
<body><h1>Widget</h1><div id="price" class="price">  $ 10.00 </div>
<ul><li>red</li><li>blue</li></ul><p>Updated 2026-11-22 10:00</p></body></html>"""


@pytest.mark.parametrize(
    "kind, expression, body, expected",
    [
        ("css", "#price", PAGE, "$ 10.00"),
        ("css", "li", PAGE, "red\nblue"),
        ("xpath", "//h1/text()", PAGE, "Widget"),
        ("xpath", "//li", PAGE, "red\nblue"),
        ("jsonpath", "$.items[*].price", '{"items": [{"price": 1}, {"price": 2.5}]}', "1\n2.5"),
        ("jsonpath", "$.name", '{"name": "Widget"}', "Widget"),
        ("regex", r"\$\s*\d+\.\d+", PAGE, "$ 10.00"),
        ("regex", r"Date", PAGE, ""),
    ],
)
def test_each_extractor_picks_its_part(kind, expression, body, expected):
    assert extract.normalise(extract.extract(kind, expression, body)) == expected


@pytest.mark.parametrize(
    "kind, expression",
    [("css", "div[["), ("xpath", "//*["), ("jsonpath", "$..[?("), ("regex", "(unclosed"), ("sql", "select 1")],
)
def test_a_bad_expression_is_an_extract_error(kind, expression):
    with pytest.raises(ExtractError):
        extract.validate(kind, expression)


def test_a_page_that_is_not_json_or_is_empty_is_an_extract_error():
    with pytest.raises(ExtractError, match="not JSON"):
        extract.extract("jsonpath", "$.a", "<html></html>")
    with pytest.raises(ExtractError, match="empty"):
        extract.extract("css", "p", "   ")


def test_whitespace_only_differences_normalise_to_the_same_text():
    before = extract.normalise("Price:  10\n\n  Stock: 3 ")
    after = extract.normalise("Price: 10\nStock:\t3\n\n\n")
    assert before == after
    assert not diff.is_change(before, after)
    assert diff.fingerprint(before) == diff.fingerprint(after)


def test_ignored_patterns_are_not_changes():
    options = Normalisation(ignore_patterns=(r"Updated \S+ \S+",))
    before = extract.normalise("Widget $10\nUpdated 2026-11-22 10:00", options)
    after = extract.normalise("Widget $10\nUpdated 2026-11-22 11:30", options)
    assert not diff.is_change(before, after)


def test_a_real_change_gives_a_unified_diff():
    before, after = "Widget\n$ 10.00", "Widget\n$ 12.00"
    assert diff.is_change(before, after)
    patch = diff.unified(before, after)
    assert "-$ 10.00" in patch and "+$ 12.00" in patch
    assert diff.unified(before, before) == ""


def test_a_page_that_comes_back_blank_is_not_a_change():
    assert not diff.is_change("Widget $10", "")
    assert not diff.is_change("Widget $10", extract.normalise("  \n\t "))


def test_white_space_alone_is_no_change_even_when_kept_in_snapshots():
    kept = Normalisation(collapse_whitespace=False)
    before = extract.normalise("Price:  10\n\nStock: 3", kept)
    after = extract.normalise("Price: 10\nStock:    3\n", kept)
    assert before != after
    assert not diff.is_change(before, after)
    assert diff.is_change(before, extract.normalise("Price: 11\nStock: 3", kept))
