from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from aggregation.models import Source

OPML = """<?xml version="1.0"?>
<opml version="2.0"><head><title>subscriptions</title></head><body>
  <outline text="Tech">
    <outline type="rss" text="Blog A" xmlUrl="https://a.example.com/feed.xml"/>
    <outline type="rss" title="Blog B" text="b" xmlUrl="https://b.example.com/atom"/>
  </outline>
  <outline type="rss" text="Broken" xmlUrl="javascript:alert(1)"/>
  <outline type="rss" text="Again A" xmlUrl="https://a.example.com/feed.xml"/>
</body></opml>"""


def test_opml_import_creates_each_feed_once_with_a_progress_bar(make_user, tmp_path):
    make_user("frank")
    path = tmp_path / "feeds.opml"
    path.write_text(OPML)
    out, err = StringIO(), StringIO()

    call_command("import_opml", str(path), user="frank", stdout=out, stderr=err)
    call_command("import_opml", str(path), user="frank", stdout=StringIO(), stderr=StringIO())

    assert out.getvalue().strip() == "2 created, 1 already there, 1 invalid"
    assert "feeds: 100%" in err.getvalue()
    assert sorted(Source.objects.values_list("name", flat=True)) == ["Blog A", "Blog B"]
    assert set(Source.objects.values_list("platform", flat=True)) == {"feed"}


def test_opml_import_refuses_a_bad_file_or_user(make_user, tmp_path):
    make_user("grace")
    bad = tmp_path / "bad.opml"
    bad.write_text("<opml><body>")
    with pytest.raises(CommandError, match="cannot read"):
        call_command("import_opml", str(bad), user="grace")
    with pytest.raises(CommandError, match="no user"):
        call_command("import_opml", str(bad), user="nobody")
