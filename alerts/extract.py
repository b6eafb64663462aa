"""Pick the watched part out of a fetched page, and normalise it into comparable text.

Extractors: a CSS selector or an XPath over HTML (lxml), a JSONPath over JSON
(jsonpath-ng), or a regular expression over the text. Normalising strips what users
told us to ignore and, by default, differences of white space alone, so that a page
re-indented or a blank line added never counts as a change.
"""

import json
import re
from dataclasses import dataclass, field

import lxml.html
from cssselect import SelectorError
from jsonpath_ng.exceptions import JsonPathParserError
from jsonpath_ng.ext import parse as parse_jsonpath
from lxml import etree
from lxml.cssselect import CSSSelector


class ExtractError(Exception):
    """The expression is invalid or the document cannot be read: the user must fix the rule."""


@dataclass(frozen=True)
class Normalisation:
    collapse_whitespace: bool = True
    ignore_patterns: tuple = field(default_factory=tuple)


def validate(kind, expression):
    """Raise ExtractError if the expression cannot be compiled (used by the API)."""
    compile_expression(kind, expression)


COMPILERS = {
    "css": CSSSelector,
    "xpath": etree.XPath,
    "jsonpath": parse_jsonpath,
    "regex": lambda expression: re.compile(expression, re.MULTILINE),
}


def compile_expression(kind, expression):
    if kind not in COMPILERS:
        raise ExtractError(f"unknown extractor {kind!r}")
    try:
        return COMPILERS[kind](expression)
    # jsonpath-ng's lexer raises plain Exception subclasses of its own for bad input.
    except (SelectorError, etree.XPathSyntaxError, JsonPathParserError, re.error, Exception) as exc:
        raise ExtractError(f"invalid {kind} expression: {exc}") from None


def extract(kind, expression, body):
    """The watched part of `body` (str) as text, one matched piece per line."""
    compiled = compile_expression(kind, expression)
    if kind == "jsonpath":
        return "\n".join(json_text(match.value) for match in compiled.find(load_json(body)))
    if kind == "regex":
        return "\n".join(match.group(0) for match in compiled.finditer(page_text(body)))
    return "\n".join(node_text(node) for node in compiled(load_html(body)))


def load_json(body):
    try:
        return json.loads(body)
    except ValueError as exc:
        raise ExtractError(f"the page is not JSON: {exc}") from None


def load_html(body):
    if not body.strip():
        raise ExtractError("the page is empty")
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


def normalise(text, options=Normalisation()):
    """Text to compare: ignored patterns removed, white space folded, blank lines dropped."""
    for pattern in options.ignore_patterns:
        text = re.sub(pattern, "", text)
    if options.collapse_whitespace:
        lines = (re.sub(r"\s+", " ", line).strip() for line in text.splitlines())
        text = "\n".join(line for line in lines if line)
    return text
