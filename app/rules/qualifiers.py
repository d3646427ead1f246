"""The qualifier catalogue of the advice packs, checked and indexed into the `RuleSet`
(called by `app.rules.assemble` after the incident types, whose advice a qualifier may bring)."""

from __future__ import annotations

from app.rules.problems import ParsedPack, Problem
from app.rules.ruleset import AdviceItem, Qualifier, RuleSet
from app.rules.schema import AdvicePack
from app.rules.vocabulary import ADVICE_KINDS


def qualifier_packs(ruleset: RuleSet, packs: list[ParsedPack], problems: list[Problem]) -> None:
    """The qualifier catalogue: after the incident types, whose advice a qualifier may bring.
    A qualifier named again (a force pack) adds its strands and advice to the first."""
    for p in packs:
        assert isinstance(p.pack, AdvicePack)
        for qi, qdef in enumerate(p.pack.qualifiers):
            here = ("qualifiers", qi)
            known = ruleset.qualifiers.get(qdef.id)
            strands = dict(known.strands) if known else {}
            for si, strand in enumerate(qdef.strands):
                if strand.id in strands:
                    problems.append(
                        p.at((*here, "strands", si, "id"), f"strand {strand.id!r} is defined twice")
                    )
                strands[strand.id] = strand.name
            for ti, itype_id in enumerate(qdef.advice_of):
                if itype_id not in ruleset.incident_types:
                    problems.append(
                        p.at((*here, "advice_of", ti), f"unknown incident type {itype_id!r}")
                    )
            ruleset.qualifiers[qdef.id] = Qualifier(
                id=qdef.id,
                name=known.name if known else qdef.name,
                description=(known.description if known else "") or qdef.description,
                advice_of=tuple(
                    dict.fromkeys([*(known.advice_of if known else ()), *qdef.advice_of])
                ),
                strands=strands,
            )
            items = ruleset.qualifier_advice.setdefault(qdef.id, [])
            for kind in ADVICE_KINDS:
                for ai, item in enumerate(getattr(qdef, kind)):
                    if item.id in ruleset.advice_items:
                        problems.append(
                            p.at((*here, kind, ai, "id"), f"advice id {item.id!r} is used twice")
                        )
                        continue
                    advice_item = AdviceItem(
                        id=item.id,
                        kind=kind,
                        incident_type="",
                        qualifier=qdef.id,
                        text=item.text,
                        rule=f"{item.id}@{p.pack.version}",
                        source=item.source or "",
                    )
                    ruleset.advice_items[item.id] = advice_item
                    items.append(advice_item)
            items.sort(key=lambda i: ADVICE_KINDS.index(i.kind))
