"""Role-based access: the one place that says who may open which view."""
from __future__ import annotations

from functools import wraps

from flask import abort, redirect, request, url_for
from flask_login import current_user

from helpdesk.common import INSIGHT_ROLES, STAFF_ROLES

STAFF = tuple(sorted(STAFF_ROLES))
INSIGHTS = tuple(sorted(INSIGHT_ROLES))
SUPERVISORS = ("supervisor", "admin")
ADMINS = ("admin",)


def roles_required(*roles: str):
    """Require a signed-in user holding one of `roles` (403 otherwise); no roles = any signed-in user."""

    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            if not current_user.is_authenticated:
                return redirect(url_for("accounts.login", next=request.full_path.rstrip("?")))
            if roles and not current_user.has_role(*roles):
                abort(403)
            return view(*args, **kwargs)

        wrapped.required_roles = roles
        return wrapped

    return decorator


login_required = roles_required()
staff_required = roles_required(*STAFF)
insights_required = roles_required(*INSIGHTS)
supervisor_required = roles_required(*SUPERVISORS)
admin_required = roles_required(*ADMINS)


def public(view):
    """Mark a view as open to anonymous visitors (checked by the route-coverage test)."""
    view.public = True
    return view
