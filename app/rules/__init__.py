"""Rules: packs are data (YAML validated by pydantic), evaluation is pure (no I/O).

- `loader.load_configured(rules_dir)` -> `RuleSet` (or `PackLoadError`: file, line, reason)
- `engine.evaluate(rules, facts)` -> planned alerts
- `guidance.prompts_for / advice_for / incident_types / advice_item / require_*`
- `cues.detect_cues(rules.lexicon, text)` -> hidden-vulnerability cues
The running service's packs (`resources.rules`), their reload and cross-worker sync are
`app.live_rules`: outside this package, which imports nothing of ours.
"""
