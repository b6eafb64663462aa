"""Kept importable for the migrations written before the encrypted field moved to core.fields."""

from core.fields import EncryptedJSONField, decrypt, encrypt

__all__ = ["EncryptedJSONField", "decrypt", "encrypt"]
