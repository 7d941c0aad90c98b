"""Import every domain's models so the metadata knows all tables (create_all, Alembic)."""
from helpdesk.accounts import models as accounts_models  # noqa: F401
from helpdesk.api import models as api_models  # noqa: F401
from helpdesk.insights import models as insights_models  # noqa: F401
from helpdesk.manuals import models as manuals_models  # noqa: F401
from helpdesk.notify import models as notify_models  # noqa: F401
from helpdesk.ops import models as ops_models  # noqa: F401
from helpdesk.sla import models as sla_models  # noqa: F401
from helpdesk.tickets import models as tickets_models  # noqa: F401
