"""The alert's diff: the same hunks difflib gives on the whole texts, bounded for pages
crafted to make difflib quadratic, and cut to a size every channel can carry."""

import difflib
import random

from alerts import diff


def whole_text_diff(before, after):
    lines = difflib.unified_diff(
        before.splitlines(), after.splitlines(), fromfile="before", tofile="after", n=2, lineterm=""
    )
    return "\n".join(lines)


def page(lines):
    return "\n".join(lines)


def test_a_change_in_a_long_page_gives_the_hunks_of_the_whole_texts():
    rows = [f"row {n}: {n * 7}" for n in range(3000)]
    changed = rows[:1500] + ["row 1500: a new price"] + rows[1501:2990] + ["an added line"] + rows[2990:]
    assert diff.unified(page(rows), page(changed)) == whole_text_diff(page(rows), page(changed))
    assert "@@ -1499,5 +1499,5 @@" in diff.unified(page(rows), page(changed))


def test_changes_at_either_end_and_emptied_or_new_texts_number_their_lines_as_difflib_does():
    cases = [
        (["a", "b", "c"], ["x", "b", "c"]),
        (["a", "b", "c"], ["a", "b", "x"]),
        (["a", "b", "c"], ["a", "b", "c", "d"]),
        (["a", "b", "c", "d"], ["a", "d"]),
        ([], ["a"]),
        (["a"], []),
        (["a", "b"], ["a", "b"]),
    ]
    for before, after in cases:
        assert diff.unified(page(before), page(after)) == whole_text_diff(page(before), page(after)), (before, after)


def test_a_page_crafted_for_a_quadratic_diff_is_described_not_diffed():
    rng = random.Random(7)
    values = [format(n, "x") for n in range(3010)]
    before = page(rng.choice(values) for _ in range(300_000))
    after = page(rng.choice(values) for _ in range(300_000))

    described = diff.unified(before, after)

    assert described == "From line 1, 300,000 lines became 300,000: too many changed lines to show (more than 5,000)."


def test_a_long_diff_is_cut_at_a_line_and_says_how_much_is_left_out():
    before = page(f"old line {n}" for n in range(4000))
    after = page(f"new line {n}" for n in range(4000))

    shown = diff.unified(before, after)

    assert len(shown) < diff.DIFF_MAX_CHARS + 100
    kept, rest = shown.rsplit("\n", 1)
    assert kept.splitlines()[-1].startswith(("-old line", "+new line"))
    assert rest.startswith("… the diff goes on for ") and rest.endswith(" more characters.")
