"""Idempotent writes: a client-generated `Idempotency-Key` makes a retried write store once."""
