"""Helpers shared by the HTML views of every domain."""
from __future__ import annotations

from functools import wraps
from typing import Callable

from flask import flash, redirect

from helpdesk.extensions import db


def shows_refusals(*errors: type[Exception], redirect_to: Callable[..., str] | None = None,
                   form: type | None = None, field: str | None = None, page: Callable | None = None):
    """A POST view's answer to a service refusal, declared once instead of a try/except in each view.

    When the view raises one of `errors` (a service error carrying a lazy message), the transaction is
    rolled back and the message is shown in the reader's language, either

    - next to the form (`form`, `field`, `page`): the form is built again from the posted data, the
      message goes to the form field the error names (`exc.field`) or else to `field`, and
      `page(form, **view_args)` renders the page again (its own status code); or
    - on the page (`redirect_to`): flashed as an error, then a redirect to `redirect_to(**view_args)`.

    Errors the view handles itself (e.g. a version conflict with its own page) are caught inside it;
    subclasses caught there never reach this decorator. Place it below the route and access decorators.
    """
    if (page is None) == (redirect_to is None) or (page is not None and (form is None or field is None)):
        raise TypeError("shows_refusals: give either redirect_to, or form, field and page")

    def decorator(view):
        @wraps(view)
        def wrapped(**view_args):
            try:
                return view(**view_args)
            except errors as exc:
                db.session.rollback()
                if page is None:
                    flash(str(exc), "error")
                    return redirect(redirect_to(**view_args))
                posted = form()
                named = getattr(exc, "field", None)
                target = posted[named] if named in posted._fields else posted[field]
                target.errors = list(target.errors) + [str(exc)]
                return page(posted, **view_args)

        return wrapped

    return decorator
