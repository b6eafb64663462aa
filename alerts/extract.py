"""Pick the watched part out of a fetched page, and normalise it into comparable text.

Extractors: a CSS selector or an XPath over HTML (lxml), a JSONPath over JSON
(jsonpath-ng), or a regular expression over the text. Normalising strips what users
told us to ignore and, by default, differences of white space alone, so that a page
re-indented or a blank line added never counts as a change.

Every expression and every page comes from a user, so both run in a helper process
(core.confined) under EXTRACT_TIMEOUT, EXTRACT_MAX_MEMORY_MB and EXTRACT_MAX_TEXT: lxml
evaluates XPath in C where no job timeout can interrupt it, and a cubic XPath over a
large page, a catastrophic regex or a JSONPath over a huge document would otherwise hold
a worker for good. Going over a limit is an ExtractError naming the limit: the run fails
at once and the worker goes on.
"""

import json
import re
from dataclasses import dataclass, field

from django.conf import settings
from jsonpath_ng.ext import parse as parse_jsonpath

from core import confined


class ExtractError(Exception):
    """The expression is invalid or the document cannot be read: the user must fix the rule."""


@dataclass(frozen=True)
class Normalisation:
    collapse_whitespace: bool = True
    ignore_patterns: tuple = field(default_factory=tuple)


def validate(kind, expression):
    """Raise ExtractError if the expression cannot be compiled (used by the API)."""
    compile_expression(kind, expression)


# lxml (~8 MB) is imported where it is used: by the extraction helper, and by the web
# process once someone saves a CSS or XPath rule.


def css_selector(expression):
    from lxml.cssselect import CSSSelector

    return CSSSelector(expression)


def xpath(expression):
    from lxml import etree

    return etree.XPath(expression)


COMPILERS = {
    "css": css_selector,
    "xpath": xpath,
    "jsonpath": parse_jsonpath,
    "regex": lambda expression: re.compile(expression, re.MULTILINE),
}


def compile_expression(kind, expression):
    if kind not in COMPILERS:
        raise ExtractError(f"unknown extractor {kind!r}")
    try:
        return COMPILERS[kind](expression)
    # cssselect's SelectorError, lxml's XPathSyntaxError, re.error, and jsonpath-ng's lexer,
    # which raises plain Exception subclasses of its own for bad input.
    except Exception as exc:
        raise ExtractError(f"invalid {kind} expression: {exc}") from None


def extract(kind, expression, body):
    """The watched part of `body` (str) as text, one matched piece per line, found by the
    helper process within the EXTRACT_* limits."""
    return confined_call({"task": "extract", "kind": kind, "expression": expression, "body": body})


def normalise(text, options=Normalisation()):
    """Text to compare: ignored patterns removed, white space folded, blank lines dropped.
    The ignore patterns are users' regular expressions: the helper applies them."""
    if options.ignore_patterns:
        text = confined_call({"task": "strip", "text": text, "patterns": list(options.ignore_patterns)})
    if options.collapse_whitespace:
        lines = (re.sub(r"\s+", " ", line).strip() for line in text.splitlines())
        text = "\n".join(line for line in lines if line)
    return text


# One helper process per worker process, reused from check to check (core.confined).
HELPER = confined.Helper("alerts.extract:run_task")

LIMIT_SETTINGS = {
    "time": "EXTRACT_TIMEOUT",
    "cpu": "EXTRACT_TIMEOUT",
    "memory": "EXTRACT_MAX_MEMORY_MB",
    "size": "EXTRACT_MAX_TEXT",
}


def confined_call(payload):
    """run_task(payload) in the helper; any limit hit or failure there is an ExtractError."""
    limits = confined.Limits(
        seconds=settings.EXTRACT_TIMEOUT,
        memory_bytes=settings.EXTRACT_MAX_MEMORY_MB * 2**20,
        # JSON may escape every character of the text as \uXXXX.
        reply_bytes=6 * settings.EXTRACT_MAX_TEXT + 1024,
    )
    try:
        return HELPER.call({**payload, "max_text": settings.EXTRACT_MAX_TEXT}, limits)
    except confined.LimitExceeded as exc:
        raise ExtractError(f"extraction stopped: it {exc} (limit: {LIMIT_SETTINGS[exc.limit]})") from None
    except confined.TaskFailed as exc:
        raise ExtractError(str(exc)) from None


# --- in the helper process: no settings, no database, only the page and the expression -------


def run_task(payload):
    """What the helper runs for extract() and normalise()."""
    if payload["task"] == "strip":
        return strip_patterns(payload["text"], payload["patterns"])
    return extract_here(payload["kind"], payload["expression"], payload["body"], payload["max_text"])


def strip_patterns(text, patterns):
    for pattern in patterns:
        text = re.sub(pattern, "", text)
    return text


def extract_here(kind, expression, body, max_text):
    compiled = compile_expression(kind, expression)
    if kind == "jsonpath":
        pieces = (json_text(match.value) for match in compiled.find(load_json(body)))
    elif kind == "regex":
        pieces = (match.group(0) for match in compiled.finditer(page_text(body)))
    else:
        pieces = (node_text(node) for node in evaluate(compiled, load_html(body)))
    return joined_within(pieces, max_text)


def evaluate(compiled, document):
    result = compiled(document)
    # An XPath may compute a number, a string or a boolean instead of selecting nodes.
    return result if isinstance(result, list) else [result]


def joined_within(pieces, max_text):
    """The pieces one per line; ExtractError as soon as the text grows past max_text (a
    selector matching every nested element can ask for the page's text thousands of times)."""
    kept, size = [], 0
    for piece in pieces:
        size += len(piece) + 1
        if size > max_text + 1:
            raise ExtractError(f"the extracted text is longer than {max_text} characters (limit: EXTRACT_MAX_TEXT)")
        kept.append(piece)
    return "\n".join(kept)


def load_json(body):
    try:
        return json.loads(body)
    except ValueError as exc:
        raise ExtractError(f"the page is not JSON: {exc}") from None


def load_html(body):
    if not body.strip():
        raise ExtractError("the page is empty")
    import lxml.html

    return lxml.html.document_fromstring(body)


def page_text(body):
    """The visible text of an HTML page, or the body itself when it is not HTML."""
    if "<" not in body:
        return body
    document = load_html(body)
    for hidden in document.xpath("//script|//style"):
        hidden.drop_tree()
    return document.text_content()


def node_text(node):
    if isinstance(node, str):
        return node
    return node.text_content() if hasattr(node, "text_content") else str(node)


def json_text(value):
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, ensure_ascii=False)
