"""Checking an AWS Signature Version 4 ``Authorization`` header, written by hand: the
sandbox is the oracle the Bedrock adapter's botocore signing is checked against.

Every access key id is accepted with the secret access key ``SIGV4_SECRET`` (kanjia
gives each sandbox deployment exactly that); a wrong signature, a missing header or a
date more than 15 minutes off is refused, as AWS refuses them.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from urllib.parse import quote

from aiohttp import web

__all__ = ["SIGV4_SECRET", "check_sigv4"]

SIGV4_SECRET = "sandbox-key"
_ALGORITHM = "AWS4-HMAC-SHA256"
_SKEW_S = 15 * 60


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def _fields(header: str) -> dict[str, str]:
    out = {}
    for part in header[len(_ALGORITHM):].split(","):
        name, _, value = part.strip().partition("=")
        out[name] = value
    return out


def check_sigv4(request: web.Request, body: bytes, service: str) -> tuple[str, str] | None:
    """None when the request is signed right; else (AWS exception name, message)."""
    header = request.headers.get("Authorization", "")
    if not header.startswith(_ALGORITHM + " "):
        return ("MissingAuthenticationTokenException", "Missing Authentication Token")
    fields = _fields(header)
    scope = fields.get("Credential", "").split("/")
    signed = fields.get("SignedHeaders", "")
    if len(scope) != 5 or scope[3] != service or scope[4] != "aws4_request" or not signed \
            or "Signature" not in fields:
        return ("IncompleteSignatureException", "Authorization header requires 'Credential', "
                "'SignedHeaders' and 'Signature' parameters.")
    if scope[0] == "bad-key":
        return ("UnrecognizedClientException",
                "The security token included in the request is invalid.")
    amz_date = request.headers.get("X-Amz-Date", "")
    try:
        when = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        return ("IncompleteSignatureException", "X-Amz-Date header is missing or malformed.")
    if abs((datetime.now(UTC) - when).total_seconds()) > _SKEW_S or scope[1] != amz_date[:8]:
        return ("InvalidSignatureException", "Signature expired or not yet current.")
    names = signed.split(";")
    if "host" not in names:
        return ("InvalidSignatureException", "'Host' must be a signed header.")
    canonical_headers = "".join(
        f"{n}:{' '.join(request.headers.get(n, '').split())}\n" for n in names)
    canonical = "\n".join((request.method, quote(request.raw_path.split("?", 1)[0], safe="/~"),
                           request.query_string, canonical_headers, signed,
                           hashlib.sha256(body).hexdigest()))
    credential_scope = "/".join(scope[1:])
    to_sign = "\n".join((_ALGORITHM, amz_date, credential_scope,
                         hashlib.sha256(canonical.encode()).hexdigest()))
    key = _hmac(("AWS4" + SIGV4_SECRET).encode(), scope[1])
    for part in scope[2:]:
        key = _hmac(key, part)
    expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, fields["Signature"]):
        return ("InvalidSignatureException",
                "The request signature we calculated does not match the signature you "
                "provided. Check your AWS Secret Access Key and signing method. Consult the "
                "service documentation for details.")
    return None
