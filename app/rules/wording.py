"""Plain words for what a handler reads (issue 13): people by name, relationship to the caller
and age; households by address; past contacts grouped by incident type and outcome.

Never an internal id (person, household, contact or marker ids): a handler cannot act on
"person DSP2B", and ids read out on a call leak the force's references. Ids stay in the
alerts' machine field (`evidence`). Pure: the time is the facts' `now`, nothing is looked up.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import date, datetime

from app.rules.facts import ContactRef, HouseholdFacts, MarkerRef, PersonFacts

# Incident types named on one evidence line each; the rest are counted together.
LISTED_TYPES = 6
# memberships.csv `relationship` values as said aloud (the rest: underscores become spaces).
RELATION_WORDS = {"ex_partner": "ex-partner"}


def age_on(date_of_birth: str | None, now: datetime) -> int | None:
    """Age in whole years at `now`, None when the date of birth is unknown or unreadable."""
    if not date_of_birth:
        return None
    try:
        born = date.fromisoformat(date_of_birth[:10])
    except ValueError:
        return None
    today = now.date()
    years = today.year - born.year - ((today.month, today.day) < (born.month, born.day))
    return years if 0 <= years < 130 else None


def relation_words(person: PersonFacts) -> str:
    """How the person relates to the caller: "the caller", "the caller's partner", or "a
    household member" when the history does not say."""
    if person.relationship == "caller":
        return "the caller"
    if person.relation:
        return f"the caller's {_relation(person.relation)}"
    return "a household member"


def person_words(person: PersonFacts, now: datetime) -> str:
    """ "Jo Demo (partner, 41)": the name, the relationship to the caller and the age."""
    age = age_on(person.date_of_birth, now)
    if person.relationship == "caller":
        role = "caller"
    else:
        role = _relation(person.relation) if person.relation else "household member"
    if person.name:
        extra = ", ".join([role, *([str(age)] if age is not None else [])])
        return f"{person.name} ({extra})"
    who = relation_words(person)
    return f"{who} (aged {age})" if age is not None else who


def household_words(household: HouseholdFacts) -> str:
    if household.address:
        return f"the household at {household.address}"
    return "the caller's household"


def day_words(when: datetime, now: datetime) -> str:
    days = (now.date() - when.date()).days
    if days <= 0:
        return "today"
    if days == 1:
        return "yesterday"
    return f"{days} days ago"


def date_words(when: datetime) -> str:
    return f"{when.day} {when:%b %Y}"


def incident_words(incident_type: str | None, names: Mapping[str, str]) -> str:
    """An incident type as the advice pack names it (lower case inside a sentence)."""
    if not incident_type:
        return "type not recorded"
    name = names.get(incident_type) or _plain(incident_type)
    # Keep acronyms ("ASB", "DA") as they are; lower the first letter of ordinary words.
    if len(name) > 1 and name[0].isupper() and not name[1].isupper():
        name = name[0].lower() + name[1:]
    return name


def contact_lines(
    subject: str,
    contacts: Sequence[ContactRef],
    *,
    fact: str,
    within_days: int,
    now: datetime,
    incident_names: Mapping[str, str],
) -> list[str]:
    """Evidence for a count: a heading ("this number: 4 contacts in 30 days: 3 anti-social
    behaviour, 1 burglary"), then one line per incident type with its outcomes and when the
    latest was. `contacts` are those counted."""
    if not contacts:
        return []
    by_type: dict[str, list[ContactRef]] = {}
    for ref in sorted(contacts, key=lambda c: c.occurred_at, reverse=True):
        by_type.setdefault(incident_words(ref.incident_type, incident_names), []).append(ref)
    groups = sorted(by_type.items(), key=lambda g: (-len(g[1]), -g[1][0].occurred_at.timestamp()))
    shown = groups[:LISTED_TYPES]
    heading = ", ".join(f"{len(refs)} {name}" for name, refs in shown)
    rest = sum(len(refs) for _, refs in groups[LISTED_TYPES:])
    if rest:
        heading += f", {rest} of other types"
    lines = [f"{_capital(subject)}: {len(contacts)} {fact} in {within_days} days: {heading}"]
    for name, refs in shown:
        outcomes = Counter(_plain(r.outcome) if r.outcome else "outcome not recorded" for r in refs)
        said = ", ".join(
            f"{n} {outcome}" if len(refs) > 1 else outcome for outcome, n in outcomes.most_common()
        )
        when = day_words(refs[0].occurred_at, now)
        flags = []
        if any(r.domestic_abuse for r in refs) and "domestic" not in name:
            flags.append("domestic abuse")
        latest = f"latest {when}" if len(refs) > 1 else when
        extra = f" ({', '.join(flags)})" if flags else ""
        lines.append(f"{len(refs)} {name}{extra}, {latest}: {said}")
    return lines


def marker_line(who: str, label: str, category: str | None, marker: MarkerRef) -> str:
    """ "Jo Demo (partner, 41): domestic abuse high-risk (safeguarding), set 16 Oct 2026"."""
    kind = f"{label} ({_plain(category)})" if category else label
    until = f", until {date_words(marker.expires_at)}" if marker.expires_at else ""
    return f"{_capital(who)}: {kind}, set {date_words(marker.set_at)}{until}"


def join_words(parts: Sequence[str]) -> str:
    """Parts joined as said aloud: "a", "a and b", "a, b and c"."""
    if len(parts) <= 1:
        return "".join(parts)
    return f"{', '.join(parts[:-1])} and {parts[-1]}"


def _relation(word: str) -> str:
    return RELATION_WORDS.get(word, _plain(word))


def _plain(word: str) -> str:
    return word.replace("_", " ")


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]
