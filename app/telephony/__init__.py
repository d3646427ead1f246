"""Telephony: the canonical call event, signature checks, number normalisation, adapters."""
