"""Staff, roles and API tokens."""
