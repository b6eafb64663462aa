"""Did the caps and rate limits hold across hosts? Counted where the work lands: at the
stand-ins, from when each `eas` call ran and when each watched page was fetched."""

from bisect import bisect_left

# A start is granted, then the job claims its row and fetches: the stand-in sees the fetch a
# little after the grant. Windows are this much shorter than the limit's period.
GRANT_TO_FETCH_SLACK = 0.5


def most_at_once(intervals):
    """The most (start, end) intervals open at one moment. At equal times an end comes
    before a start: one call ending as the next begins is not an overlap."""
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    open_now = most = 0
    for _, change in events:
        open_now += change
        most = max(most, open_now)
    return most


def clear_of(intervals, moments):
    """The (start, end) intervals during which none of `moments` fell: a call running when
    Redis forgot (a flush, a restart) lost its concurrency lease with it, and the next
    call may rightly start beside it."""
    return [(start, end) for start, end in intervals if not any(start <= moment <= end for moment in moments)]


def windows(times, seconds, *, skip_near=(), slack=GRANT_TO_FETCH_SLACK):
    """How many of `times` fall in each window [t, t + seconds - slack) that starts at one of
    them. Windows near a moment of `skip_near` are left out: Redis forgot the rate log
    then (a flush, a restart), and starts before it no longer count after it."""
    times = sorted(times)
    length = seconds - slack
    counts = []
    for index, start in enumerate(times):
        if any(start - slack <= moment < start + length for moment in skip_near):
            continue
        counts.append(bisect_left(times, start + length) - index)
    return counts
