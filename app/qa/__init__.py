"""Quality assurance (issue 12): the evaluation form as data, reproducible samples of calls,
reviews against the form, the force's monthly table with its breakdowns and calibration, and
the training register it is read beside."""
