"""The cue packs' part of `app.rules.assemble.build`: every phrase compiles and belongs to
one cue (or is ignored), one negation section, one severity per strand, effects that name
known qualifiers and prompts; then the lexicon is compiled. Split from assemble.py: the
phrase-clash checks are a pack kind of their own."""

from __future__ import annotations

from dataclasses import dataclass

from app.rules import schema
from app.rules.cues import CueEffects, PhraseError, StrandInput, compile_lexicon, expand_phrase
from app.rules.problems import ParsedPack, Problem
from app.rules.ruleset import RuleSet
from app.rules.schema import CuePack, Negation, Typos

IGNORED = "(ignore)"  # owner of an ignored phrase, in the phrase-clash check


_CueList = list[tuple[str, str, list[str], CueEffects]]


@dataclass
class CueInput:
    negation: Negation | None
    ignored: list[str]
    strands: dict[str, tuple[str, _CueList]]
    severity: dict[str, tuple[str, str]]  # strand id -> (severity, file)
    strand_effects: dict[str, CueEffects]
    typos: Typos | None = None


def _effects(
    p: ParsedPack,
    where: tuple[str | int, ...],
    given: schema.CueEffects | None,
    ruleset: RuleSet,
    problems: list[Problem],
) -> CueEffects:
    """The effects as the lexicon holds them; unknown qualifiers and prompts are problems."""
    if given is None:
        return CueEffects()
    prompt_ids = {prompt.id for prompt, _, _ in ruleset.prompts}
    for qi, qualifier in enumerate(given.qualifiers):
        if qualifier not in ruleset.qualifiers:
            problems.append(p.at((*where, "qualifiers", qi), f"unknown qualifier {qualifier!r}"))
    for pi, prompt in enumerate(given.prompts):
        if prompt not in prompt_ids:
            problems.append(p.at((*where, "prompts", pi), f"unknown prompt {prompt!r}"))
    return CueEffects(tuple(given.qualifiers), tuple(given.prompts), given.grade_floor)


def cue_input(packs: list[ParsedPack], problems: list[Problem], ruleset: RuleSet) -> CueInput:
    """Phrases compile, each phrase belongs to one cue, one negation section, effects name
    what the other packs define (`ruleset`: the prompt and advice packs already read)."""
    negation = None
    negation_from = ""
    typos: Typos | None = None
    strand_effects: dict[str, CueEffects] = {}
    seen_sequences: dict[tuple[str, ...], str] = {}
    cue_ids: set[str] = set()
    ignored: list[str] = []
    strand_input: dict[str, tuple[str, _CueList]] = {}
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
                for key in ("before", "breakers", "after", "through"):
                    for wi, phrase in enumerate(getattr(negation, key)):
                        try:
                            expand_phrase(phrase)
                        except PhraseError as exc:
                            problems.append(p.at(("negation", key, wi), str(exc)))
        if p.pack.typos is not None:
            if typos is not None:
                problems.append(p.at(("typos",), "typos is already defined in another pack"))
            typos = p.pack.typos
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
            strand_effects[strand.id] = strand_effects.get(strand.id, CueEffects()).merged(
                _effects(p, ("strands", si, "effects"), strand.effects, ruleset, problems)
            )
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
                effects = _effects(
                    p, ("strands", si, "cues", ci, "effects"), cue.effects, ruleset, problems
                )
                entry[1].append((cue.id, p.pack.version, good, effects))
    return CueInput(negation, ignored, strand_input, strand_severity, strand_effects, typos)


def compile_cues(ruleset: RuleSet, cues: CueInput) -> None:
    negation = cues.negation
    ruleset.lexicon = compile_lexicon(
        [
            StrandInput(sid, name, cue_list, cues.strand_effects.get(sid, CueEffects()))
            for sid, (name, cue_list) in cues.strands.items()
        ],
        ignore=cues.ignored,
        negate_before=negation.before if negation else (),
        breakers=negation.breakers if negation else (),
        through=negation.through if negation else (),
        window=negation.window if negation else 3,
        negate_after=negation.after if negation else (),
        after_window=negation.after_window if negation else 1,
        severity={sid: severity for sid, (severity, _) in cues.severity.items()},
        typo_min_length=cues.typos.min_length if cues.typos else None,
        not_typos=cues.typos.not_typos if cues.typos else (),
    )
