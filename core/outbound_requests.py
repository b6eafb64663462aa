"""The outbound guard (core.outbound) for libraries that speak HTTP through `requests`
(apprise): a transport that sends every request through core.outbound.request.

A module of its own so that `requests` is imported only by the processes that send through
it (a worker delivering to an apprise channel), not by every process that imports the guard.
"""

import io
from urllib.parse import urlsplit

import httpx
import requests

from core.outbound import FetchRefused, ResponseTooLarge, new_client, request

# Set by this module's client, or meaningless once the body is decoded and read whole.
NOT_FORWARDED = {"host", "content-length", "connection", "accept-encoding", "transfer-encoding"}
# Describe the body, not the sender: they may follow a 307 to another origin.
BODY_HEADERS = {"content-type", "user-agent"}
DECODED_AWAY = {"content-encoding", "content-length", "transfer-encoding"}


class RequestsAdapter(requests.adapters.BaseAdapter):
    """A `requests` transport that sends through `request` above: every address checked and
    pinned, every redirect hop checked, the body capped, credentials kept to the origin.
    What went wrong is listed in our words, never the remote's answer: `refusals` (what the
    guard refused: retrying will not help) and `problems` (errors and error statuses)."""

    def __init__(self):
        super().__init__()
        self.refusals = []
        self.problems = []

    def send(self, prepared, stream=False, timeout=None, verify=True, cert=None, proxies=None):
        host = urlsplit(prepared.url).hostname or prepared.url
        headers, origin_headers = split_headers(prepared.headers)
        try:
            with new_client(verify=verify is not False) as client:
                response = request(
                    client,
                    prepared.method,
                    prepared.url,
                    headers=headers,
                    origin_headers=origin_headers,
                    content=body_bytes(prepared.body),
                )
        except (FetchRefused, ResponseTooLarge) as exc:
            self.refusals.append(str(exc))
            raise requests.exceptions.ConnectionError(str(exc), request=prepared) from None
        except httpx.TimeoutException:
            raise self.failure(requests.exceptions.Timeout, f"{host} did not answer in time", prepared) from None
        except httpx.HTTPError as exc:
            message = f"could not reach {host} ({type(exc).__name__})"
            raise self.failure(requests.exceptions.ConnectionError, message, prepared) from None
        if response.status_code >= 400:
            self.problems.append(f"{host} answered HTTP {response.status_code}")
        return as_requests_response(response, prepared, self)

    def failure(self, kind, message, prepared):
        self.problems.append(message)
        return kind(message, request=prepared)

    def close(self):
        pass


def split_headers(headers):
    """(headers for every hop, headers for the origin only)."""
    kept = {name: value for name, value in headers.items() if name.lower() not in NOT_FORWARDED}
    every_hop = {name: value for name, value in kept.items() if name.lower() in BODY_HEADERS}
    return every_hop, {name: value for name, value in kept.items() if name not in every_hop}


def body_bytes(body):
    if body is None or isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode()
    if hasattr(body, "read"):
        return body.read()
    return b"".join(chunk if isinstance(chunk, bytes) else chunk.encode() for chunk in body)


def as_requests_response(response, prepared, adapter):
    result = requests.Response()
    result.status_code = response.status_code
    result.reason = response.reason_phrase
    result.headers = requests.structures.CaseInsensitiveDict(
        (name, value) for name, value in response.headers.items() if name.lower() not in DECODED_AWAY
    )
    result.encoding = requests.utils.get_encoding_from_headers(result.headers)
    result.raw = io.BytesIO(response.content)  # already read in full, and capped
    result.url = prepared.url
    result.request = prepared
    result.connection = adapter
    return result
