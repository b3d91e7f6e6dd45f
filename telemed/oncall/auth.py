"""Who may do what with the rota: a specialist declares their own blocks; coordinators
see everyone's rota and its gaps. An accept link is its own credential (see ``links``)."""

from __future__ import annotations

from telemed.accounts.auth import ensure_coordinator as ensure_coordinator
from telemed.accounts.auth import ensure_specialist as ensure_specialist
