"""What changed between two snapshots, as a unified diff and a fingerprint."""

import difflib
import hashlib
import re

# difflib is quadratic at worst: a page crafted for it (300k short lines, each value just
# rare enough not to count as junk) cost 40 s of CPU with the rule's row locked. So the
# lines both texts share at the start and the end are left out first (a small change in a
# big page is still shown), and a changed middle longer than this is described, not diffed.
DIFF_MAX_LINES = 5_000
# What an alert carries to every channel: a diff longer than this is cut at a line.
DIFF_MAX_CHARS = 20_000
HUNK = re.compile(r"^@@ -(\d+)(,\d+)? \+(\d+)(,\d+)? @@$")


def fingerprint(text):
    """The snapshot's identity: equal normalised text, equal fingerprint."""
    return hashlib.sha256(text.encode()).hexdigest()


def unified(before, after, *, context=2):
    """A unified diff of two normalised texts, "" when they are the same; its hunks number
    the lines as in the whole texts."""
    old, new = before.splitlines(), after.splitlines()
    head = shared_lines(old, new)
    tail = shared_lines(old[head:][::-1], new[head:][::-1])
    start = max(0, head - context)
    old_middle = old[start : len(old) - max(0, tail - context)]
    new_middle = new[start : len(new) - max(0, tail - context)]
    if max(len(old_middle), len(new_middle)) > DIFF_MAX_LINES:
        return too_long_to_show(head, len(old) - tail, len(new) - tail)
    lines = difflib.unified_diff(old_middle, new_middle, fromfile="before", tofile="after", n=context, lineterm="")
    return cut("\n".join(shifted(line, start) for line in lines))


def shared_lines(old, new):
    """How many lines the two lists share from their start."""
    count = 0
    for old_line, new_line in zip(old, new):
        if old_line != new_line:
            break
        count += 1
    return count


def shifted(line, offset):
    """A hunk header of the middle, renumbered for the whole text; other lines as they are."""
    match = HUNK.match(line)
    if not match:
        return line
    old_start, old_length, new_start, new_length = match.groups()
    return f"@@ -{int(old_start) + offset}{old_length or ''} +{int(new_start) + offset}{new_length or ''} @@"


def too_long_to_show(head, old_end, new_end):
    return (
        f"From line {head + 1}, {old_end - head:,} lines became {new_end - head:,}: "
        f"too many changed lines to show (more than {DIFF_MAX_LINES:,})."
    )


def cut(text):
    if len(text) <= DIFF_MAX_CHARS:
        return text
    kept = text[: text.rfind("\n", 0, DIFF_MAX_CHARS) + 1 or DIFF_MAX_CHARS]
    return f"{kept}… the diff goes on for {len(text) - len(kept):,} more characters."


def is_change(before, after):
    """True only for a real change: the texts differ in more than white space, and the
    new one is not blank.

    White space is ignored even for rules that keep it in their snapshots: re-indented
    markup or a blank line added is never worth an alert. A page that comes back empty
    (an error page stripped to nothing, a failed render) is not "everything was deleted":
    it is no change, and the fetch is judged elsewhere.
    """
    return without_whitespace(before) != without_whitespace(after) and bool(after.strip())


def without_whitespace(text):
    return "".join(text.split())
