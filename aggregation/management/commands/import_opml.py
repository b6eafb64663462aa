import xml.etree.ElementTree as ElementTree

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import URLValidator
from tqdm import tqdm

from aggregation import services
from aggregation.models import Source
from workspaces.services import workspace_for_write


def feeds_of(path):
    """(title, URL) of every feed outline in an OPML file, nested folders included."""
    try:
        tree = ElementTree.parse(path)
    except (OSError, ElementTree.ParseError) as exc:
        raise CommandError(f"cannot read {path}: {exc}") from None
    return [
        (outline.get("title") or outline.get("text") or outline.get("xmlUrl"), outline.get("xmlUrl").strip())
        for outline in tree.iter("outline")
        if outline.get("xmlUrl")
    ]


class Command(BaseCommand):
    help = "Import the feeds of an OPML file as sources of a user's workspace (existing URLs are skipped)."

    def add_arguments(self, parser):
        parser.add_argument("path")
        parser.add_argument("--user", required=True, help="the username owning the new sources")
        parser.add_argument("--workspace", type=int, help="workspace id (default: the user's first)")

    def handle(self, *args, path, user, workspace, **options):
        owner = get_user_model().objects.filter(username=user).first()
        if owner is None:
            raise CommandError(f"no user named {user!r}")
        target = workspace_for_write(user=owner, workspace_id=workspace)
        known = set(Source.objects.filter(workspace=target).values_list("url", flat=True))
        counts = {"created": 0, "skipped": 0, "invalid": 0}
        # tqdm redraws its line with \r: give it the raw stream, not the newline-adding wrapper.
        bar = tqdm(feeds_of(path), desc="feeds", unit="feed", file=self.stderr._out)
        for title, url in bar:
            counts[self.import_one(owner, target, title, url, known)] += 1
        self.stdout.write(
            f"{counts['created']} created, {counts['skipped']} already there, {counts['invalid']} invalid"
        )

    def import_one(self, owner, workspace, title, url, known):
        if url in known:
            return "skipped"
        try:
            URLValidator(schemes=["http", "https"])(url)
        except ValidationError:
            self.stderr.write(f"invalid feed URL skipped: {url}")
            return "invalid"
        services.source_create(user=owner, workspace_id=workspace.pk, name=title[:200], platform="feed", url=url)
        known.add(url)
        return "created"
