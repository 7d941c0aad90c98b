"""API test helpers: tokens for users, and a JSON client carrying the bearer token."""
from __future__ import annotations

import itertools
import json

import pytest

from helpdesk.audit import Actor

_names = itertools.count(1)


@pytest.fixture
def make_token(db):
    from helpdesk.api import service

    def make(user, scopes=("read", "tickets:write"), name=None, **kwargs):
        name = name or f"integration-{next(_names)}"
        created = service.create_token(db.session, name=name, user_email=user.email, scopes=list(scopes),
                                       actor=Actor.system("test"), **kwargs)
        return created.plaintext

    return make


class Api:
    def __init__(self, client, token):
        self.client, self.token = client, token

    def _headers(self, headers=None):
        out = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        out.update(headers or {})
        return out

    def get(self, path, headers=None, **kwargs):
        return self.client.get("/api/v1" + path, headers=self._headers(headers), **kwargs)

    def send(self, method, path, body=None, headers=None, raw=None, content_type="application/json"):
        data = raw if raw is not None else json.dumps(body, ensure_ascii=False)
        return self.client.open("/api/v1" + path, method=method, data=data, content_type=content_type,
                                headers=self._headers(headers))

    def post(self, path, body=None, **kwargs):
        return self.send("POST", path, body, **kwargs)

    def patch(self, path, body=None, **kwargs):
        return self.send("PATCH", path, body, **kwargs)


@pytest.fixture
def api_for(client, make_token):
    def make(user, scopes=("read", "tickets:write"), **kwargs):
        return Api(client, make_token(user, scopes, **kwargs))

    return make


def problem_of(response, status):
    assert response.status_code == status, response.get_data(as_text=True)[:800]
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["status"] == status and body["title"] and body["type"] and body["detail"]
    return body
