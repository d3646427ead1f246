"""Rules: packs are data (YAML validated by pydantic), evaluation is pure (no I/O)."""
