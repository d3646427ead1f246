"""The cue packs' part of `app.rules.assemble.build`: every phrase compiles and belongs to
one cue (or is ignored), one negation section, one severity per strand; then the lexicon is
compiled. Split from assemble.py: the phrase-clash checks are a pack kind of their own."""

from __future__ import annotations

from dataclasses import dataclass

from app.rules.cues import PhraseError, compile_lexicon, expand_phrase
from app.rules.problems import ParsedPack, Problem
from app.rules.ruleset import RuleSet
from app.rules.schema import CuePack, Negation

IGNORED = "(ignore)"  # owner of an ignored phrase, in the phrase-clash check


@dataclass
class CueInput:
    negation: Negation | None
    ignored: list[str]
    strands: dict[str, tuple[str, list[tuple[str, str, list[str]]]]]
    severity: dict[str, tuple[str, str]]  # strand id -> (severity, file)


def cue_input(packs: list[ParsedPack], problems: list[Problem]) -> CueInput:
    """Phrases compile, each phrase belongs to one cue, one negation section."""
    negation = None
    negation_from = ""
    seen_sequences: dict[tuple[str, ...], str] = {}
    cue_ids: set[str] = set()
    ignored: list[str] = []
    strand_input: dict[str, tuple[str, list[tuple[str, str, list[str]]]]] = {}
    # A strand's severity is said once: a force pack adding cues to a shipped strand may
    # leave it out (and keep the shipped one) but may not contradict it.
    strand_severity: dict[str, tuple[str, str]] = {}  # strand id -> (severity, file)
    for p in packs:
        assert isinstance(p.pack, CuePack)
        if p.pack.negation is not None:
            if negation is not None:
                problems.append(
                    p.at(("negation",), f"negation is already defined in {negation_from}")
                )
            else:
                negation, negation_from = p.pack.negation, p.file
                for key in ("before", "breakers", "after"):
                    for wi, phrase in enumerate(getattr(negation, key)):
                        try:
                            expand_phrase(phrase)
                        except PhraseError as exc:
                            problems.append(p.at(("negation", key, wi), str(exc)))
        for ii, phrase in enumerate(p.pack.ignore):
            try:
                sequences = expand_phrase(phrase)
            except PhraseError as exc:
                problems.append(p.at(("ignore", ii), str(exc)))
                continue
            for seq in sequences:
                owner = seen_sequences.get(seq)
                if owner is not None and owner != IGNORED:
                    problems.append(
                        p.at(
                            ("ignore", ii), f"phrase {' '.join(seq)!r} is a phrase of cue {owner!r}"
                        )
                    )
                    break
                seen_sequences[seq] = IGNORED
            else:
                ignored.append(phrase)
        for si, strand in enumerate(p.pack.strands):
            entry = strand_input.setdefault(strand.id, (strand.name, []))
            if strand.severity is not None:
                said = strand_severity.setdefault(strand.id, (strand.severity, p.file))
                if said[0] != strand.severity:
                    problems.append(
                        p.at(
                            ("strands", si, "severity"),
                            f"strand {strand.id!r} has severity {said[0]!r} in {said[1]}; "
                            "leave it out here or change it there",
                        )
                    )
            for ci, cue in enumerate(strand.cues):
                if cue.id in cue_ids:
                    problems.append(
                        p.at(("strands", si, "cues", ci, "id"), f"cue id {cue.id!r} is used twice")
                    )
                    continue
                cue_ids.add(cue.id)
                good: list[str] = []
                for hi, phrase in enumerate(cue.phrases):
                    where = ("strands", si, "cues", ci, "phrases", hi)
                    try:
                        sequences = expand_phrase(phrase)
                    except PhraseError as exc:
                        problems.append(p.at(where, str(exc)))
                        continue
                    clash = next(
                        (s for s in sequences if seen_sequences.get(s, cue.id) != cue.id), None
                    )
                    if clash is not None:
                        owner = seen_sequences[clash]
                        problems.append(
                            p.at(
                                where,
                                f"phrase {' '.join(clash)!r} is already "
                                + (
                                    "an ignored phrase"
                                    if owner == IGNORED
                                    else f"a phrase of cue {owner!r}"
                                ),
                            )
                        )
                        continue
                    for seq in sequences:
                        seen_sequences[seq] = cue.id
                    good.append(phrase)
                entry[1].append((cue.id, p.pack.version, good))
    return CueInput(negation, ignored, strand_input, strand_severity)


def compile_cues(ruleset: RuleSet, cues: CueInput) -> None:
    negation = cues.negation
    ruleset.lexicon = compile_lexicon(
        [(sid, name, cue_list) for sid, (name, cue_list) in cues.strands.items()],
        ignore=cues.ignored,
        negate_before=negation.before if negation else (),
        breakers=negation.breakers if negation else (),
        window=negation.window if negation else 3,
        negate_after=negation.after if negation else (),
        after_window=negation.after_window if negation else 1,
        severity={sid: severity for sid, (severity, _) in cues.severity.items()},
    )
