"""Calls: every accepted event stored, and the lifecycle state of each call."""
