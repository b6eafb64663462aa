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
    """True only for a real change: normalised texts differ and the new one is not blank.

    A page that comes back empty (an error page stripped to nothing, a failed render)
    is not "everything was deleted": it is no change, and the fetch is judged elsewhere.
    """
    return before != after and bool(after.strip())
