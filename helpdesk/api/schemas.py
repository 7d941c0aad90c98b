"""Pydantic v2 models: they validate API requests AND are the schemas of the OpenAPI document.

Request models forbid unknown fields (`extra="forbid"`) and never coerce types (`strict`), so a
typo or a number sent as a string is a 400 with a message per field instead of a silent default.
"""
from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

import unicodedata

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from helpdesk import vocabulary
from helpdesk.api.models import WEBHOOK_EVENTS
from helpdesk.vocabulary import values

CATEGORY_CODES = ("login", "password", "browser", "allocation", "delivery", "vaccination_records", "disposal",
                  "data_correction", "system_error", "other")
# The API's enumerations are the vocabulary's codes (helpdesk/vocabulary.py).
Status = Literal[values(vocabulary.Status)]  # type: ignore[valid-type]
Priority = Literal[values(vocabulary.Priority)]  # type: ignore[valid-type]
Channel = Literal[values(vocabulary.Channel)]  # type: ignore[valid-type]
Tier = Literal[values(vocabulary.Tier)]  # type: ignore[valid-type]
OrgKind = Literal[values(vocabulary.OrgKind)]  # type: ignore[valid-type]
ArticleRole = Literal[(*values(vocabulary.OrgKind), "common")]  # type: ignore[valid-type]
CategoryCode = Literal[CATEGORY_CODES]  # type: ignore[valid-type]
Lang = Literal["ja", "en"]

Short = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Email = Annotated[str, StringConstraints(min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")]
TagStr = Annotated[str, StringConstraints(min_length=1, max_length=50)]
#: Custom field values by key (types per field: see the `CustomFields` schema, rebuilt from the definitions).
CustomFieldValues = dict[Annotated[str, StringConstraints(min_length=1, max_length=40)],
                         str | bool | int | float | None]


def _check_text(value: str) -> str:
    for ch in value:
        if ch in "\n\t\r":
            continue
        category = unicodedata.category(ch)
        if category == "Cc":
            raise ValueError("制御文字（NUL など）は使えません。")
        if category == "Cs":
            raise ValueError("不正な文字（サロゲート）が含まれています。")
    return value


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, str_strip_whitespace=True)

    @field_validator("*", mode="after")
    @classmethod
    def _no_control_characters(cls, value):
        """Text is stored in PostgreSQL (no NUL, valid UTF-8 only): refuse what it cannot hold."""
        if isinstance(value, str):
            return _check_text(value)
        if isinstance(value, list):
            for item in value:
                if isinstance(item, str):
                    _check_text(item)
        return value


class Response(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- problems ----------------------------------------------------------------------------------

class Problem(Response):
    """RFC 9457 problem details."""

    type: str = Field(description="URI identifying the problem type")
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: dict[str, list[str]] | None = Field(default=None, description="Messages per request field")


# --- shared pieces -----------------------------------------------------------------------------

class OrgRef(Response):
    code: str
    name: str
    kind: OrgKind


class UserRef(Response):
    id: int
    email: str
    name: str


# --- tickets -----------------------------------------------------------------------------------

class TicketSummary(Response):
    ref: str = Field(examples=["HD-000123"])
    subject: str
    status: Status
    priority: Priority
    category: CategoryCode | None
    channel: Channel
    tier: Tier
    role: OrgKind | None
    organisation: OrgRef | None
    requester: UserRef | None
    assignee: UserRef | None
    sla_state: str | None
    resolution_due_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime
    version: int = Field(description="Send it back (body `version` or `If-Match`) to update safely")
    url: str


class Ticket(TicketSummary):
    body: str
    tags: list[str]
    context: dict[str, Any] | None = Field(description="Structured context from the in-app help button")
    first_response_due_at: dt.datetime | None
    first_response_at: dt.datetime | None
    resolved_at: dt.datetime | None
    closed_at: dt.datetime | None
    csat_score: int | None
    articles: list[str] = Field(description="Slugs of the manual articles linked to the ticket")
    custom_fields: dict[str, Any] = Field(
        default_factory=dict, description="Custom field values by key; keys, types, choices: #/components/schemas/CustomFields")


class TicketPage(Response):
    items: list[TicketSummary]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page")


class TicketCreate(Request):
    subject: Annotated[str, StringConstraints(min_length=1, max_length=300)]
    body: Annotated[str, StringConstraints(max_length=100_000)] = ""
    category: CategoryCode | None = None
    priority: Priority = "P3"
    tags: list[TagStr] = Field(default_factory=list, max_length=10)
    requester_email: Email | None = Field(default=None, description="Staff tokens only: the requester")
    organisation_code: Annotated[str, StringConstraints(min_length=1, max_length=32)] | None = Field(
        default=None, description="Staff tokens only: the organisation (default: the requester's)")
    channel: Channel = Field(default="api", description="Staff tokens only: where the request came in")
    custom_fields: CustomFieldValues | None = Field(
        default=None, description="Custom field values by key; keys, types, choices: #/components/schemas/CustomFields")


class TicketUpdate(Request):
    status: Status | None = None
    priority: Priority | None = None
    category: CategoryCode | None = Field(default=None, description="A category code; \"\" is not allowed")
    assignee: Email | None = Field(default=None, description="E-mail of a staff user")
    unassign: bool = Field(default=False, description="true removes the assignee")
    custom_fields: CustomFieldValues | None = Field(
        default=None, description="Custom field values to change by key (null clears); see #/components/schemas/CustomFields")
    version: int | None = Field(default=None, ge=1, description="Expected version (or send If-Match)")


class ReplyCreate(Request):
    body: Annotated[str, StringConstraints(min_length=1, max_length=100_000)]
    public: bool = Field(default=True, description="true: reply the requester sees; false: internal note")
    version: int | None = Field(default=None, ge=1)
    minutes: int | None = Field(default=None, ge=1, le=1440,
                                description="Minutes of work behind this reply or note (time tracking; staff only)")


class Reply(Response):
    id: int
    ticket_ref: str
    body: str
    public: bool
    via: str
    author: UserRef | None
    created_at: dt.datetime
    minutes: int | None = None


# --- organisations and users --------------------------------------------------------------------

class Activation(Response):
    invited: int
    activated: int
    disabled: int
    locked: int


class Organisation(Response):
    id: int
    code: str
    name: str
    kind: OrgKind
    prefecture: str | None
    parent_code: str | None
    activation: Activation


class OrganisationPage(Response):
    items: list[Organisation]
    next_cursor: str | None


class User(Response):
    id: int
    email: str
    name: str
    phone: str | None
    organisation: OrgRef | None
    roles: list[str]
    state: Literal["invited", "activated", "disabled"]
    locked: bool
    activated_at: dt.datetime | None
    last_login_at: dt.datetime | None
    needs_review: bool


class UserPage(Response):
    items: list[User]
    next_cursor: str | None


# --- manual articles ---------------------------------------------------------------------------

class ArticleHit(Response):
    slug: str
    title: str
    role: ArticleRole
    lang: Lang
    score: float
    excerpt: str
    url: str


class ArticleHits(Response):
    items: list[ArticleHit]


class Article(Response):
    slug: str
    title: str
    role: ArticleRole
    lang: Lang
    version: int
    updated: dt.date
    tags: list[str]
    summary: str
    category: str | None
    related: list[str]
    body_markdown: str
    url: str
    translations: list[Lang]


# --- help requests (the supported system's Help button) -----------------------------------------

class HelpRequestCreate(Request):
    login_id: Email | None = Field(default=None, description="The user's login id (e-mail) in VDS")
    organisation_code: Annotated[str, StringConstraints(min_length=1, max_length=32)] | None = None
    screen_id: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = None
    error_code: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = None
    browser: Annotated[str, StringConstraints(min_length=1, max_length=300)] | None = None
    page_url: Annotated[str, StringConstraints(min_length=1, max_length=2000)] | None = None
    message: Annotated[str, StringConstraints(min_length=1, max_length=4000)] = Field(
        description="What the user wrote (free text)")
    lang: Lang = "ja"


class HelpTicket(Response):
    ref: str
    status: Status
    url: str


class HelpRequestResult(Response):
    ticket: HelpTicket
    suggestions: list[ArticleHit]


# --- admin-side objects exposed for completeness ------------------------------------------------

class WebhookEvent(Response):
    """The JSON body POSTed to a subscribed URL (signed: X-Helpdesk-Signature: sha256=<hex>)."""

    event: Literal[WEBHOOK_EVENTS]  # type: ignore[valid-type]
    id: str
    occurred_at: dt.datetime
    data: dict[str, Any]


# --- problems and insights ---------------------------------------------------------------------

ProblemStatus = Literal["candidate", "accepted", "sent", "fixed", "verified"]


class ProblemSummary(Response):
    id: int
    title: str
    status: ProblemStatus
    external_ref: str | None
    external_url: str | None
    fixed_on: dt.date | None
    ticket_count: int
    created_at: dt.datetime
    updated_at: dt.datetime


class ProblemPage(Response):
    items: list[ProblemSummary]
    next_cursor: str | None


class ProblemItem(ProblemSummary):
    description: str
    workaround: str
    verified_at: dt.datetime | None
    ticket_refs: list[str] = Field(description="Linked tickets, newest first (at most 500)")


class ProblemLinkCreate(Request):
    ticket_ref: Annotated[str, StringConstraints(min_length=4, max_length=20, pattern=r"^[Hh][Dd]-[0-9]{1,12}$")]


class ProblemLinkResult(Response):
    problem_id: int
    ticket_ref: str
    linked: bool = Field(description="false when the ticket was already linked")


class TrendSeries(Response):
    by: Literal["category", "role", "org", "prefecture", "channel"]
    period: Literal["week", "day"]
    periods: list[dt.date] = Field(description="Start day of each period (Asia/Tokyo)")
    series: dict[str, list[int]] = Field(description="Tickets created per period, per key")
    totals: dict[str, int]


class RecurringGroup(Response):
    id: int
    label: str
    size: int
    trend: str
    top_terms: list[str]
    roles: dict[str, int]
    first_seen: dt.datetime | None
    last_seen: dt.datetime | None
    ticket_refs: list[str] = Field(description="Member tickets, oldest first (at most 200)")
    problem_id: int | None


class RecurringGroups(Response):
    items: list[RecurringGroup]


REQUEST_MODELS = (TicketCreate, TicketUpdate, ReplyCreate, HelpRequestCreate, ProblemLinkCreate)
RESPONSE_MODELS = (Problem, Ticket, TicketPage, Reply, Organisation, OrganisationPage, User, UserPage,
                   ArticleHits, Article, HelpRequestResult, WebhookEvent, ProblemPage, ProblemItem, ProblemLinkResult,
                   TrendSeries, RecurringGroups)
