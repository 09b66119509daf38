"""Optional SigV4 verification: refuse a request whose signature AWS would refuse.

Off by default (``Emulator(verify_signatures=None)``). On, ``SignatureVerifier`` recomputes the
signature of every request with botocore's own signer (``SigV4Auth``), from what arrived on
the wire (method, path and query as sent, the signed headers, the body) and the secret of the
access key the request names, and answers as AWS's front end does when they differ:

| what is wrong                                                   | status, code             |
|-----------------------------------------------------------------|--------------------------|
| no ``Authorization`` header                                     | 403 MissingAuthentication|
|                                                                 |   TokenException         |
| ``Authorization`` lacks Credential, SignedHeaders or Signature, | 400 IncompleteSignature  |
|   or there is no ``X-Amz-Date``                                 |   Exception              |
| an access key the emulator does not know                        | 403 UnrecognizedClient   |
|                                                                 |   Exception              |
| scope of another day, region or service; ``host`` not signed;   | 403 InvalidSignature     |
|   a signature that does not match (wrong secret; a byte of the  |   Exception              |
|   body, path, query or of a signed header changed)              |                          |

Not checked: how old ``X-Amz-Date`` is (the emulator's clock may be a test's manual clock) and
session tokens (any ``X-Amz-Security-Token`` is signed like any header, not looked up). The
emulator's own ``/_emulator/`` paths are not AWS's and are never checked. No I/O here.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Iterable, Mapping

import botocore.auth
import botocore.awsrequest
import botocore.credentials

from ordered_sender.emulator.wire import ApiError

SIGNING_NAMES = frozenset({"iotevents", "ioteventsdata"})
"""The SigV4 service names of the two APIs the emulator serves (from their service models)."""

UNCHECKED_PREFIX = "/_emulator/"
"""The emulator's inspection paths, which no AWS client signs."""

_AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<credential>[^,\s]+),\s*"
    r"SignedHeaders=(?P<signed>[^,\s]+),\s*Signature=(?P<signature>[0-9a-f]{64})"
)

_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check your "
    "AWS Secret Access Key and signing method. Consult the service documentation for details."
)


def _invalid_signature(message: str) -> ApiError:
    return ApiError(403, "InvalidSignatureException", message)


def _incomplete(message: str) -> ApiError:
    return ApiError(400, "IncompleteSignatureException", message)


class SignatureVerifier:
    """Checks SigV4 signatures against ``secrets`` (access key id -> secret access key)."""

    def __init__(self, secrets: Mapping[str, str], region: str) -> None:
        if not secrets:
            raise ValueError(
                "verify_signatures needs at least one access key and its secret, "
                "e.g. {'testing': 'testing'}; got none"
            )
        self._secrets = dict(secrets)
        self._region = region

    @property
    def credentials(self) -> tuple[str, str]:
        """One access key and its secret that pass, for the emulator's own clients."""
        return next(iter(self._secrets.items()))

    def __call__(
        self, method: str, target: str, headers: Iterable[tuple[str, str]], body: bytes
    ) -> None:
        """Return if the request is signed right; raise ``ApiError`` as AWS answers if not.

        ``target`` is the path and query as the request line carried them (still encoded).
        """
        if target.startswith(UNCHECKED_PREFIX):
            return
        received: dict[str, str] = {}
        for name, value in headers:
            key = name.lower()
            received[key] = f"{received[key]},{value}" if key in received else value
        authorization = received.get("authorization")
        if authorization is None:
            raise ApiError(
                403, "MissingAuthenticationTokenException", "Missing Authentication Token"
            )
        parts = _AUTHORIZATION.fullmatch(authorization.strip())
        timestamp = received.get("x-amz-date")
        if parts is None or timestamp is None:
            raise _incomplete(
                "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' "
                f"parameters and an X-Amz-Date header. Authorization={authorization!r}"
            )
        access_key, _, scope = parts["credential"].partition("/")
        secret = self._secrets.get(access_key)
        if secret is None:
            raise ApiError(
                403,
                "UnrecognizedClientException",
                "The security token included in the request is invalid.",
            )
        region, service = self._check_scope(scope, timestamp)
        signed_names = parts["signed"].split(";")
        if "host" not in signed_names:
            raise _invalid_signature("'Host' must be a 'SignedHeader' in the AWS Authorization.")
        request = botocore.awsrequest.AWSRequest(
            method=method,
            url=f"http://{received.get('host', '')}{target}",
            headers={name: received.get(name, "") for name in signed_names},
            data=body,
        )
        request.context["timestamp"] = timestamp
        signer = botocore.auth.SigV4Auth(
            botocore.credentials.Credentials(access_key, secret), service, region
        )
        canonical = signer.canonical_request(request)
        expected = signer.signature(signer.string_to_sign(request, canonical), request)
        if not hmac.compare_digest(expected, parts["signature"]):
            raise _invalid_signature(_MISMATCH)

    def _check_scope(self, scope: str, timestamp: str) -> tuple[str, str]:
        pieces = scope.split("/")
        if len(pieces) != 4 or pieces[3] != "aws4_request":
            raise _incomplete(f"Credential scope must be DATE/REGION/SERVICE/aws4_request: {scope}")
        day, region, service, _ = pieces
        if day != timestamp[:8]:
            raise _invalid_signature(
                f"Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
                f"from HTTP: '{day}' != '{timestamp[:8]}', from '{timestamp}'."
            )
        if region != self._region:
            raise _invalid_signature(
                f"Credential should be scoped to a valid region, not '{region}'."
            )
        if service not in SIGNING_NAMES:
            raise _invalid_signature(
                f"Credential should be scoped to correct service: one of {sorted(SIGNING_NAMES)}."
            )
        return region, service
