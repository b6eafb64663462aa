"""What changed between two snapshots, as a unified diff and a fingerprint."""

import difflib
import hashlib


def fingerprint(text):
    """The snapshot's identity: equal normalised text, equal fingerprint."""
    return hashlib.sha256(text.encode()).hexdigest()


def unified(before, after, *, context=2):
    """A unified diff of two normalised texts, "" when they are the same."""
    lines = difflib.unified_diff(
        before.splitlines(), after.splitlines(), fromfile="before", tofile="after", n=context, lineterm=""
    )
    return "\n".join(lines)


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
