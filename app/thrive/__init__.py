"""THRIVE+ at call time: the incident type and what it brings (prompts, advice), hidden-
vulnerability cues found in the narrative, and the assessment record the handler submits.

The rules domain decides what to suggest (pure, from the rule packs); this domain keeps what
happened on the call (set, pushed, answered, given, graded) and publishes the changes.
"""
