"""Ingest rate: posts/s fetched from a local Mastodon-like server, normalized and stored
with dedupe, by one fetch job in a worker; against reading the same pages without
storing them (the server's own speed), measured in the same run."""

import time

import httpx

from bench.common import main
from tests.fakes.platforms_fake import FakePlatforms

PAGE = 40


def prepare(remote, posts):
    from django.contrib.auth.models import User

    from aggregation import services

    remote.add_posts("mastodon", "public", [{"content": f"<p>post <b>{n}</b> #bench</p>"} for n in range(posts)])
    user = User.objects.create_user(f"ingest-{time.time_ns()}", password="unused-bench-pass-1")
    return user, services.source_create(user=user, name="bench", platform="mastodon", url=remote.url, target="public")


def fetch_with_worker(user, source):
    """Seconds for one fetch job, queued and run by a ConveyorWorker."""
    from aggregation import services
    from aggregation.models import Fetch
    from jobs.connection import get_redis
    from jobs.queueing import ConveyorQueue
    from jobs.worker import ConveyorWorker

    fetch = services.source_fetch(user=user, source=source)
    worker = ConveyorWorker([ConveyorQueue("content-aggregation", connection=get_redis())], connection=get_redis())
    started = time.perf_counter()
    worker.work(burst=True, logging_level="WARNING")
    elapsed = time.perf_counter() - started
    return elapsed, Fetch.objects.get(pk=fetch.pk)


def read_pages_only(remote, posts):
    """Seconds to GET and parse every page, newest to oldest, storing nothing."""
    started = time.perf_counter()
    url, params = f"{remote.url}/api/v1/timelines/public", {"limit": PAGE}
    with httpx.Client() as client:
        while url:
            response = client.get(url, params=params)
            response.json()
            url, params = response.links.get("next", {}).get("url"), None
    return time.perf_counter() - started


def run(env, posts=5000):
    from django.conf import settings

    settings.ALLOW_PRIVATE_FETCH = True
    settings.SOURCE_MAX_PAGES = posts // PAGE + 2
    settings.SOURCE_PAGE_SIZE = PAGE
    with FakePlatforms() as remote:
        user, source = prepare(remote, posts)
        baseline = read_pages_only(remote, posts)
        first, fetch = fetch_with_worker(user, source)
        source.refresh_from_db()
        second, refetch = fetch_with_worker(user, source)
    return {
        "posts": posts,
        "stored": fetch.new_posts,
        "first": first,
        "baseline": baseline,
        "second": second,
        "second_new": refetch.new_posts,
    }


def report(results):
    posts = results["posts"]
    print(f"\ningest ({posts} Mastodon posts, {PAGE} per page, one fetch job)")
    print(f"  read pages only (baseline)   {posts / results['baseline']:>8,.0f} posts/s")
    print(
        f"  fetch, normalize, store      {posts / results['first']:>8,.0f} posts/s"
        f"   {results['first'] / results['baseline']:.2f}× the baseline's time; {results['stored']} stored"
    )
    print(f"  fetch again (nothing new)    {results['second'] * 1000:>8.0f} ms, {results['second_new']} new")


if __name__ == "__main__":
    main(__doc__, run, report, "posts", 5000)
