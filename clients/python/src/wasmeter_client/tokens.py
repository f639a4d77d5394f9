"""Subscriber tokens: the expiry of a JWT (read, never verified) and when to refresh it."""

from __future__ import annotations

import base64
import json
import math
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit


def token_expiry(token: str) -> float | None:
    """The ``exp`` claim (seconds since the epoch) of a JWT, without verifying anything;
    None when the token is not a JWT or has no numeric ``exp``."""
    try:
        part = str(token).split(".")[1]
        if not part:
            return None
        padded = part + "=" * (-len(part) % 4)
        exp = json.loads(base64.urlsafe_b64decode(padded)).get("exp")
    except (IndexError, ValueError, AttributeError, TypeError):
        return None
    if isinstance(exp, bool) or not isinstance(exp, (int, float)) or not math.isfinite(exp):
        return None
    return float(exp)


def refresh_at(exp_seconds: float, now_seconds: float) -> float:
    """When (seconds since the epoch) to refresh a token expiring at ``exp_seconds``:
    min(30 s, 10% of the remaining lifetime) before it expires."""
    return exp_seconds - min(30.0, max(0.0, exp_seconds - now_seconds) / 10)


def with_query(url: str, **params: str | None) -> str:
    """``url`` with query parameters set (or removed, for None)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in params]
    query += [(k, v) for k, v in params.items() if v is not None]
    return urlunsplit(parts._replace(query=urlencode(query)))


def query_param(url: str, name: str) -> str | None:
    """A query parameter of ``url``, if present."""
    for k, v in parse_qsl(urlsplit(url).query, keep_blank_values=True):
        if k == name:
            return v
    return None
