"""Retention and erasure (issue 16): how long each class of personal data is kept, the purge
that removes what is past it, and the erasure of one person everywhere."""
