"""Serializer pieces every app's API uses: nothing loosely typed reaches a queue."""

import httpx
from rest_framework import serializers

from core import outbound


class StrictIntegerField(serializers.IntegerField):
    """An integer, and only an integer: "5", 5.0 and true are refused, not coerced."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictSerializer(serializers.Serializer):
    """Unknown fields are an error, not silently dropped."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        return super().to_internal_value(data)


class PublicUrlField(serializers.URLField):
    """An http(s) URL our workers may fetch: its host must not resolve to a private address
    (core/outbound.py). Each fetch checks again: DNS answers change."""

    def to_internal_value(self, data):
        url = super().to_internal_value(data)
        if not url.lower().startswith(("http://", "https://")):
            raise serializers.ValidationError("Only http:// and https:// URLs can be fetched.")
        try:
            outbound.refuse_private(url)
        except outbound.FetchRefused as exc:
            raise serializers.ValidationError(f"Refused: {exc}.") from None
        except httpx.HTTPError:
            pass  # a name that does not resolve today may tomorrow: the fetches will tell
        return url
