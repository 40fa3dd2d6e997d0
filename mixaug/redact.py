"""Keep secrets out of everything mixaug prints or writes.

API keys are read from the environment (``llm.api_key_env``) and registered here;
:func:`redact` replaces them, bearer tokens, ``sk-`` style keys and the credentials
of a URL (``https://user:pass@host``) with ``***`` in any text: error messages,
journals, summaries and manifests.

Example:
    >>> register_secret("sk-live-abcdef123456")
    >>> redact("401: bad key sk-live-abcdef123456")
    '401: bad key ***'
    >>> redact_url("http://me:pw@127.0.0.1:8080/v1")
    'http://***@127.0.0.1:8080/v1'
"""

from __future__ import annotations

import re

_SECRETS: set[str] = set()

_PATTERNS = (
    (re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]{8,}"), r"\1 ***"),
    (re.compile(r"\b(Basic)\s+[A-Za-z0-9+/]{16,}={0,2}"), r"\1 ***"),
    (re.compile(r"\bsk-[A-Za-z0-9_-]{8,}"), "***"),
    (re.compile(r"(?i)(api[_-]?key[\"']?\s*[:=]\s*[\"']?)[^\s\"',}]{6,}"), r"\1***"),
    (re.compile(r"(\b[a-z][a-z0-9+.-]*://)[^/\s@]+@"), r"\1***@"),
)


def register_secret(value: str | None) -> None:
    """Remember ``value`` (an API key) so :func:`redact` removes it everywhere."""
    if value and len(value) >= 4:
        _SECRETS.add(value)


def redact(text: str) -> str:
    """``text`` with registered secrets, tokens, keys and URL credentials as ``***``."""
    for secret in sorted(_SECRETS, key=len, reverse=True):
        text = text.replace(secret, "***")
    for pattern, repl in _PATTERNS:
        text = pattern.sub(repl, text)
    return text


def redact_url(url: str | None) -> str | None:
    """``url`` without the ``user:password@`` part (``None`` stays ``None``)."""
    if url is None:
        return None
    return re.sub(r"^([a-z][a-z0-9+.-]*://)[^/@]*@", r"\1***@", url, flags=re.I)
