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


def outside_of(calls, leaseless):
    """The calls (dicts with start, end, parent) that ran in none of the `leaseless`
    windows (parent, since, until; a parent of None stands for any). When Redis forgets
    (a flush, a restart), the concurrency leases go with it: a job that held one runs on
    without it until its worker's next heartbeat takes it again, a job that started
    meanwhile holds the same slot, and until the first ends each of its calls may rightly
    run beside that job's."""
    return [
        call
        for call in calls
        if not any(
            parent in (None, call["parent"]) and call["end"] >= since and call["start"] <= until
            for parent, since, until in leaseless
        )
    ]


def overlapping_pairs(calls):
    """Each pair of calls that ran at once (a call ending as the next begins does not)."""
    ordered = sorted(calls, key=lambda call: call["start"])
    return [
        (earlier, later)
        for index, later in enumerate(ordered)
        for earlier in ordered[:index]
        if earlier["end"] > later["start"]
    ]


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
