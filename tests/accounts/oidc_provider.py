"""A small OpenID Connect provider for the tests, run in its own process on loopback.

    python tests/accounts/oidc_provider.py --port 5821 --client-id helpdesk --client-secret s3cret \
        --redirect-uri http://127.0.0.1:5000/login/sso/callback

Discovery, /authorize (approves the configured person at once, as if they had just signed in at the
provider), /token (client secret, one-time code, redirect_uri and PKCE S256 checked), /jwks (RS256 key),
/userinfo. Tests choose the person and can make the provider misbehave through POST /_control:

    {"user": {"sub": "…", "email": "…", "email_verified": true, "name": "…"},
     "mode": "" | "wrong_nonce" | "wrong_aud" | "wrong_iss" | "expired" | "bad_signature" | "no_id_token" | "deny"
             | "stale_session" (prompt=login ignored),
     "rotate_key": true, "provider_session_age": seconds}

GET /_control returns what the provider saw (token requests and whether PKCE was checked).
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urlencode

from flask import Flask, jsonify, redirect, request
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def create_provider(issuer: str, client_id: str, client_secret: str, redirect_uris: list[str],
                    email: str = "agent1@helpdesk.example.jp") -> Flask:
    app = Flask("oidc_provider")
    keys = [RSAKey.generate_key(2048, parameters={"kid": "test-key-1", "use": "sig", "alg": "RS256"})]
    rogue = RSAKey.generate_key(2048, parameters={"kid": "test-key-1"})  # same kid, not published
    lock = threading.Lock()
    state = {
        "user": {"sub": "idp-user-1", "email": email, "email_verified": True},
        "mode": "",
        "codes": {},
        "tokens": {},
        "seen": [],
        "prompts": [],
    }

    def error_redirect(redirect_uri: str, error: str, st: str | None):
        query = {"error": error}
        if st:
            query["state"] = st
        return redirect(f"{redirect_uri}?{urlencode(query)}")

    @app.get("/.well-known/openid-configuration")
    def discovery():
        return jsonify({
            "issuer": issuer,
            "authorization_endpoint": f"{issuer}/authorize",
            "token_endpoint": f"{issuer}/token",
            "userinfo_endpoint": f"{issuer}/userinfo",
            "jwks_uri": f"{issuer}/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "email", "profile"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "code_challenge_methods_supported": ["S256"],
            "claims_supported": ["sub", "email", "email_verified", "name", "amr"],
        })

    @app.get("/jwks")
    def jwks():
        with lock:
            return jsonify(KeySet(list(keys)).as_dict(private=False))

    @app.get("/authorize")
    def authorize():
        args = request.args
        redirect_uri = args.get("redirect_uri", "")
        if args.get("client_id") != client_id or redirect_uri not in redirect_uris:
            # Never redirect to an unregistered address (RFC 6749 §4.1.2.1): answer here.
            return jsonify({"error": "invalid_request", "error_description": "unknown client or redirect_uri"}), 400
        st = args.get("state")
        if args.get("response_type") != "code" or "openid" not in (args.get("scope") or "").split():
            return error_redirect(redirect_uri, "invalid_request", st)
        if not args.get("code_challenge") or args.get("code_challenge_method") != "S256" or not st \
                or not args.get("nonce"):
            return error_redirect(redirect_uri, "invalid_request", st)
        with lock:
            if state["mode"] == "deny":
                return error_redirect(redirect_uri, "access_denied", st)
            code = secrets.token_urlsafe(24)
            # A provider session: the person "signed in" here once; prompt=login signs them in again now,
            # unless the test wants a provider that ignores it ("stale_session").
            fresh = args.get("prompt") == "login" and state["mode"] != "stale_session"
            if fresh or "auth_time" not in state:
                state["auth_time"] = int(time.time())
            state["prompts"].append(args.get("prompt"))
            state["codes"][code] = {"redirect_uri": redirect_uri, "nonce": args["nonce"],
                                    "challenge": args["code_challenge"], "user": dict(state["user"]),
                                    "at": time.time(), "auth_time": state["auth_time"]}
        return redirect(f"{redirect_uri}?{urlencode({'code': code, 'state': st})}")

    def _client_authenticated() -> bool:
        auth = request.authorization
        if auth is not None and auth.type == "basic":
            return auth.username == client_id and auth.password == client_secret
        return request.form.get("client_id") == client_id and request.form.get("client_secret") == client_secret

    @app.post("/token")
    def token():
        if not _client_authenticated():
            return jsonify({"error": "invalid_client"}), 401
        form = request.form
        if form.get("grant_type") != "authorization_code":
            return jsonify({"error": "unsupported_grant_type"}), 400
        with lock:
            grant = state["codes"].pop(form.get("code", ""), None)  # a code works once
            mode = state["mode"]
            seen = {"code_known": grant is not None, "pkce": False}
            state["seen"].append(seen)
        if grant is None or time.time() - grant["at"] > 60 or form.get("redirect_uri") != grant["redirect_uri"]:
            return jsonify({"error": "invalid_grant"}), 400
        verifier = form.get("code_verifier") or ""
        if _b64(hashlib.sha256(verifier.encode("ascii")).digest()) != grant["challenge"]:
            return jsonify({"error": "invalid_grant", "error_description": "PKCE verification failed"}), 400
        seen["pkce"] = True
        access_token = secrets.token_urlsafe(32)
        user = grant["user"]
        now = int(time.time())
        claims = {"iss": issuer, "sub": user["sub"], "aud": client_id, "iat": now, "exp": now + 300,
                  "auth_time": grant["auth_time"], "nonce": grant["nonce"],
                  "at_hash": _b64(hashlib.sha256(access_token.encode("ascii")).digest()[:16])}
        claims.update({k: v for k, v in user.items() if k != "sub"})
        with lock:
            signing_key = keys[-1]  # the newest key signs; older ones stay published
        if mode == "wrong_nonce":
            claims["nonce"] = secrets.token_urlsafe(16)
        elif mode == "wrong_aud":
            claims["aud"] = "someone-else"
            claims["azp"] = client_id
        elif mode == "wrong_iss":
            claims["iss"] = issuer + "/other"
        elif mode == "expired":
            claims["iat"], claims["exp"] = now - 900, now - 600
        elif mode == "bad_signature":
            signing_key = rogue
        with lock:
            state["tokens"][access_token] = user
        answer = {"access_token": access_token, "token_type": "Bearer", "expires_in": 300,
                  "scope": "openid email profile"}
        if mode != "no_id_token":
            kid = signing_key.kid if signing_key is not rogue else keys[-1].kid
            answer["id_token"] = jwt.encode({"alg": "RS256", "kid": kid}, claims, signing_key)
        return jsonify(answer)

    @app.get("/userinfo")
    def userinfo():
        header = request.headers.get("Authorization", "")
        with lock:
            user = state["tokens"].get(header.removeprefix("Bearer ").strip())
        if not header.startswith("Bearer ") or user is None:
            return jsonify({"error": "invalid_token"}), 401
        return jsonify(user)

    @app.route("/_control", methods=["GET", "POST"])
    def control():
        if request.method == "POST":
            body = request.get_json(force=True)
            with lock:
                if "user" in body:
                    state["user"] = dict(body["user"])
                if "mode" in body:
                    state["mode"] = body["mode"] or ""
                if body.get("reset_seen"):
                    state["seen"].clear()
                    state["prompts"].clear()
                if "provider_session_age" in body:  # the person signed in at the provider that long ago
                    state["auth_time"] = int(time.time()) - int(body["provider_session_age"])
                if body.get("rotate_key"):  # a new signing key with a new kid, as providers roll keys
                    keys.append(RSAKey.generate_key(2048, parameters={"kid": f"test-key-{len(keys) + 1}",
                                                                      "use": "sig", "alg": "RS256"}))
        with lock:
            return jsonify({"user": state["user"], "mode": state["mode"], "seen": list(state["seen"]),
                            "prompts": list(state["prompts"]),
                            "kids": [k.kid for k in keys]})

    return app


@dataclass
class RunningProvider:
    issuer: str
    client_id: str
    client_secret: str
    process: subprocess.Popen

    def control(self, **body) -> dict:
        import requests

        response = requests.post(f"{self.issuer}/_control", json=body, timeout=10)
        response.raise_for_status()
        return response.json()

    def seen(self) -> list[dict]:
        import requests

        return requests.get(f"{self.issuer}/_control", timeout=10).json()["seen"]


def _free_port(ports) -> int:
    for port in ports:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {ports}")


@contextmanager
def running_provider(redirect_uris: list[str], ports=range(5820, 5830), client_id: str = "helpdesk-test",
                     client_secret: str = "provider-secret-for-tests"):
    """Start this file as its own process on a free port of `ports`; stop it afterwards."""
    import requests

    for _attempt in range(3):  # another process may take the port between the check and the bind
        port = _free_port(ports)
        issuer = f"http://127.0.0.1:{port}"
        command = [sys.executable, __file__, "--port", str(port), "--client-id", client_id,
                   "--client-secret", client_secret]
        for uri in redirect_uris:
            command += ["--redirect-uri", uri]
        log = tempfile.TemporaryFile()  # not a pipe: a full pipe would stall the provider
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log)
        deadline = time.monotonic() + 20
        ready = False
        while time.monotonic() < deadline and process.poll() is None:
            try:
                ready = requests.get(f"{issuer}/.well-known/openid-configuration", timeout=1).ok
            except requests.ConnectionError:
                ready = False
            if ready:
                break
            time.sleep(0.1)
        if ready:
            break
        process.kill()
        process.wait(5)
        log.seek(0)
        output = log.read().decode("utf-8", "replace")[-2000:]
        log.close()
    else:
        raise RuntimeError(f"the test OIDC provider did not start: {output}")
    try:
        yield RunningProvider(issuer, client_id, client_secret, process)
    finally:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        log.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--client-secret", required=True)
    parser.add_argument("--redirect-uri", action="append", required=True)
    parser.add_argument("--email", default="agent1@helpdesk.example.jp", help="the person /authorize approves")
    args = parser.parse_args()
    from werkzeug.serving import make_server

    issuer = f"http://{args.host}:{args.port}"
    server = make_server(args.host, args.port, create_provider(issuer, args.client_id, args.client_secret,
                                                              args.redirect_uri, args.email), threaded=True)
    print(f"OIDC provider listening on {issuer}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
