"""The API docs pages load only our own static files: no script or style from a CDN."""

import re

import pytest
from django.conf import settings
from django.contrib.staticfiles import finders

ASSET = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']""")


@pytest.fixture
def member(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("reader", password="unused-pass-123"))
    return client


def assets_of(page):
    html = page.content.decode()
    return [url for url in ASSET.findall(html) if not url.startswith("#")]


@pytest.mark.parametrize("path", ["/api/docs/", "/api/redoc/"])
def test_the_docs_page_references_only_local_static_assets(member, path):
    page = member.get(path)
    assert page.status_code == 200
    assets = assets_of(page)
    assert assets, "the page loads nothing: not the docs page"
    static = "/" + settings.STATIC_URL.strip("/") + "/"
    for url in assets:
        assert url.startswith(static), f"{path} loads {url} from outside our static files"
        assert finders.find(url.removeprefix(static)), f"{url} is not among our static files"
    assert not re.search(r"https?://", page.content.decode()), "the page names an outside address"


def test_the_old_swagger_address_redirects_to_the_docs(member):
    answer = member.get("/api/schema/swagger-ui/")
    assert answer.status_code == 301 and answer["Location"] == "/api/docs/"


def test_the_docs_need_a_login(client, db):
    assert client.get("/api/docs/").status_code in (401, 403)
