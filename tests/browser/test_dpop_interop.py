"""DPoP (RFC 9449) against an independent implementation: proofs made and tokens checked with
joserfc (and hashes with hashlib), not with Portcullis's own code.

Signs in with ES256 and EdDSA keys, checks the access token's signature against the JWKS and its
`cnf.jkt` against joserfc's RFC 7638 thumbprint, refreshes with and without the key, calls the
account API with the DPoP scheme, and does the nonce dance for a client that requires nonces.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
import urllib.request

from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, OKPKey

from portcullis_server import ALICE, PHONE_CLIENT, cli, running

STRICT_CLIENT = "strict-app"


def header(answer, name: str) -> str | None:
    return next((v for k, v in answer.headers.items() if k.lower() == name.lower()), None)


def proof(key, alg: str, htm: str, htu: str, nonce: str | None = None, access_token: str | None = None) -> str:
    claims = {"jti": secrets.token_urlsafe(16), "htm": htm, "htu": htu, "iat": int(time.time())}
    if nonce is not None:
        claims["nonce"] = nonce
    if access_token is not None:
        digest = hashlib.sha256(access_token.encode()).digest()
        claims["ath"] = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    head = {"typ": "dpop+jwt", "alg": alg, "jwk": key.as_dict(private=False)}
    return jwt.encode(head, claims, key, algorithms=[alg])


def strict_client(db: str) -> None:
    cli(db, "client", "create", "--name", "Strict app", "--client-id", STRICT_CLIENT, "--public",
        "--scope", "read", "--dpop-bound-access-tokens", "--dpop-nonce-required")  # fmt: skip


def test_independent_client_signs_in_refreshes_and_calls_the_account_api():
    with running(demo=False, setup=strict_client) as server:
        token_url = server.base + "/oauth/token"
        with urllib.request.urlopen(server.base + "/.well-known/jwks.json", timeout=10) as res:
            jwks = KeySet.import_key_set(json.load(res))
        for key, alg in [(ECKey.generate_key("P-256"), "ES256"), (OKPKey.generate_key("Ed25519"), "EdDSA")]:
            signed_in = server.request(
                "POST", "/oauth/token",
                {"grant_type": "password", "client_id": PHONE_CLIENT, "username": ALICE[0], "password": ALICE[1]},
                headers={"DPoP": proof(key, alg, "POST", token_url)},
            )  # fmt: skip
            assert signed_in.status == 200, signed_in.body
            assert signed_in.body["token_type"] == "DPoP"
            assert header(signed_in, "DPoP-Nonce")
            access = jwt.decode(signed_in.body["access_token"], jwks)
            assert access.header["typ"] == "at+jwt"
            assert access.claims["cnf"] == {"jkt": key.thumbprint()}, alg

            refresh = {"grant_type": "refresh_token", "client_id": PHONE_CLIENT,
                       "refresh_token": signed_in.body["refresh_token"]}  # fmt: skip
            stolen = server.request("POST", "/oauth/token", refresh)
            assert (stolen.status, stolen.body["error"]) == (400, "invalid_dpop_proof")
            thief = ECKey.generate_key("P-256")
            stolen = server.request("POST", "/oauth/token", refresh, headers={"DPoP": proof(thief, "ES256", "POST", token_url)})
            assert (stolen.status, stolen.body["error"]) == (400, "invalid_dpop_proof")
            refreshed = server.request("POST", "/oauth/token", refresh, headers={"DPoP": proof(key, alg, "POST", token_url)})
            assert refreshed.status == 200, refreshed.body
            at = refreshed.body["access_token"]
            assert jwt.decode(at, jwks).claims["cnf"]["jkt"] == key.thumbprint()

            me_url = server.base + "/account/v1/me"
            as_bearer = server.request("GET", "/account/v1/me", headers={"Authorization": f"Bearer {at}"})
            assert as_bearer.status == 401
            me = server.request("GET", "/account/v1/me", headers={
                "Authorization": f"DPoP {at}", "DPoP": proof(key, alg, "GET", me_url, access_token=at)})
            assert me.status == 200, me.body
            assert me.body["username"] == ALICE[0]


def test_independent_client_does_the_nonce_dance():
    with running(demo=False, setup=strict_client) as server:
        token_url = server.base + "/oauth/token"
        key = ECKey.generate_key("P-256")
        form = {"grant_type": "password", "client_id": STRICT_CLIENT, "username": ALICE[0], "password": ALICE[1]}
        bearer = server.request("POST", "/oauth/token", form)
        assert (bearer.status, bearer.body["error"]) == (400, "invalid_dpop_proof")
        first = server.request("POST", "/oauth/token", form, headers={"DPoP": proof(key, "ES256", "POST", token_url)})
        assert (first.status, first.body["error"]) == (400, "use_dpop_nonce")
        nonce = header(first, "DPoP-Nonce")
        assert nonce
        second = server.request("POST", "/oauth/token", form,
                                headers={"DPoP": proof(key, "ES256", "POST", token_url, nonce=nonce)})  # fmt: skip
        assert second.status == 200, second.body
        assert second.body["token_type"] == "DPoP"
