"""Every table module, imported so that `Base.metadata` is complete (Alembic, tests).

Add a domain's models module here when it arrives.
"""

from app.audit import models as audit_models
from app.auth import models as auth_models
from app.calls import models as calls_models
from app.db import Base
from app.history import models as history_models
from app.idempotency import models as idempotency_models
from app.qa import models as qa_models
from app.realtime import models as realtime_models
from app.thrive import models as thrive_models

__all__ = [
    "Base",
    "audit_models",
    "auth_models",
    "calls_models",
    "history_models",
    "idempotency_models",
    "qa_models",
    "realtime_models",
    "thrive_models",
]
