"""HTTP views of the manuals (placeholder index until the manuals pages land)."""
from flask import render_template_string

from helpdesk.auth import public
from helpdesk.manuals import bp


@bp.get("/manuals")
@public
def index():
    return render_template_string("{% extends 'base.html' %}{% block content %}<h1>{{ _('マニュアル') }}</h1>{% endblock %}")
