"""`python -m chaos` (make chaos): the whole stack under fire, then a table of what held.

    python -m chaos            # the full drill: minutes of load, 100 kills, flushes, an outage…
    python -m chaos --bounded  # a few kills and one flush (what `make test` runs)
    python -m chaos --json F   # the figures as JSON too

Runs on PostgreSQL when DATABASE_URL names a server (in a database of its own, dropped
after), else on SQLite. Exits non-zero when a goal is missed.
"""

import argparse
import json
import math
import sys
import time

from .drill import FULL, KILL_GOAL, Drill, Plan

GOALS = {"kill": KILL_GOAL, "host down": 30, "flush": 60, "redis restart": 60, "outage": 60}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m chaos", description=__doc__.splitlines()[0])
    parser.add_argument("--bounded", action="store_true", help="a few kills and one flush (make test)")
    parser.add_argument("--json", metavar="FILE", help="also write the figures to FILE")
    options = parser.parse_args(argv)
    plan = Plan() if options.bounded else FULL
    drill = Drill(plan, log=lambda line: print(line, flush=True))
    results = drill.run()
    figures = figures_of(results, plan, postgres=drill.stack.is_postgres)
    print(table(figures))
    if options.json:
        with open(options.json, "w") as out:
            json.dump(figures, out, indent=2)
    return 0 if figures["goals met"] else 1


def figures_of(results, plan, *, postgres):
    accepted = sum(len(rows) for rows in results.rows.values())
    recoveries = {fault: max(times) for fault, times in results.recoveries.items()}
    goals_met = (
        not results.unfinished
        and not any(
            results.duplicates[name]
            for name in ("builds submitted twice", "likes sent twice", "alerts delivered twice")
        )
        and all(recoveries.get(fault, 0) <= limit for fault, limit in GOALS.items())
        and all(ok for *_, ok in results.dashboard)
        and all(held["most"] <= held["limit"] for held in results.limits.values())
    )
    return {
        "database": "PostgreSQL" if postgres else "SQLite",
        "plan": vars(plan),
        "requests made": dict(results.requests),
        "requests accepted": accepted,
        "ended in a final state": accepted - sum(1 for row in results.unfinished if row[0] != "delivery"),
        "final states": dict(results.final),
        "lost or stuck": [list(row) for row in results.unfinished],
        "stuck, explained": results.stuck,
        "kills late to recover, explained": results.slow_kills,
        "faults thrown": [
            f"{time.strftime('%H:%M:%S', time.gmtime(moment))} {fault}" for moment, fault in results.faults
        ],
        "503s while Redis was away (slowest, s)": round(max(results.refused_503, default=0), 2),
        "outage": results.outage,
        "longest recovery (s)": {fault: (None if math.isinf(t) else round(t, 1)) for fault, t in recoveries.items()},
        "faults not thrown (nothing to hit)": dict(results.not_thrown),
        "dashboard workers after each fault": [list(entry) for entry in results.dashboard],
        "duplicate outside effects": results.duplicates,
        "limits across hosts": results.limits,
        "goals met": goals_met,
    }


def table(figures):
    lines = [f"\nConveyor under fire ({figures['database']})", ""]
    lines.append(f"  requests accepted            {figures['requests accepted']}")
    lines.append(f"  ended in a final state       {figures['ended in a final state']}")
    lines.append(f"  lost or stuck (goal 0)       {len(figures['lost or stuck'])}")
    for stuck in figures["stuck, explained"]:
        lines.append(f"    {stuck['row']}; attempts {stuck['attempts']}; in Redis {stuck['job in Redis']}")
    for name, count in figures["duplicate outside effects"].items():
        lines.append(f"  {name:<28} {count}")
    lines.append("")
    lines.append("  fault                 longest recovery   goal")
    for fault, seconds in figures["longest recovery (s)"].items():
        goal = GOALS.get(fault)
        shown = "never" if seconds is None else f"{seconds:.1f} s"
        lines.append(f"  {fault:<21} {shown:>16}   {f'≤ {goal} s' if goal else '-'}")
    for late in figures["kills late to recover, explained"]:
        lines.append(f"    late: {late}")
    for fault, times in figures["faults not thrown (nothing to hit)"].items():
        lines.append(f"  {fault:<21} {'not thrown':>16}   {times}× no busy worker to hit for a minute")
    lines.append("")
    lines.append("  across every host                  most   limit")
    for name, held in figures["limits across hosts"].items():
        lines.append(f"  {name:<34} {held['most']:>4}   {held['limit']:>5}")
        lines.extend(
            f"    {what}: {value}" for what, value in held.items() if what not in ("most", "limit", "overlaps")
        )
        for overlap in held.get("overlaps", ()):
            lines.append(
                f"    at once: {' | '.join(overlap['calls'])}; faults just before: {overlap['faults just before']}"
            )
    wrong = [entry for entry in figures["dashboard workers after each fault"] if not entry[3]]
    lines.append("")
    lines.append(f"  dashboard worker count back to the true number after every fault: {'yes' if not wrong else wrong}")
    if figures["outage"]:
        lines.append(f"  during the outage: {figures['outage']}")
    lines.append(f"\n  goals met: {'yes' if figures['goals met'] else 'NO'}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
