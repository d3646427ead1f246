"""bench/qa: the QA monthly report over a year of 180,000 reviews (issue 12)."""
