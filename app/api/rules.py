"""Rule packs: the catalogue (any staff) and reload (admin)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter

from app import live_rules
from app.api.deps import ResourcesDep, holding
from app.auth.policy import Capability
from app.auth.service import Principal
from app.rules.catalogue import Catalogue, PackInfo, describe

router = APIRouter(prefix="/rules", tags=["rules"])

RuleReader = Annotated[Principal, holding(Capability.read_rules)]
RuleReloader = Annotated[Principal, holding(Capability.reload_rules)]


@router.get("", response_model=Catalogue)
async def list_rules(_staff: RuleReader, resources: ResourcesDep) -> Catalogue:
    """The loaded packs with their rules, prompts, advice and cue strands."""
    return describe(resources.rules)


@router.post("/reload", response_model=list[PackInfo])
async def reload_rules(_admin: RuleReloader, resources: ResourcesDep) -> list[PackInfo]:
    """Re-read the packs. Invalid: 422 `invalid_rule_pack` with file/line/reason, old packs stay."""
    sync = resources.rules_sync
    if sync is not None:
        rules = await sync.reload()  # every worker follows within RULES_POLL_SECONDS
    else:
        settings = resources.settings
        rules = await live_rules.reload(
            resources, settings.rules_dir, settings.history_horizon_days
        )
    return describe(rules).packs
