"""The consultation log (DPA 2018 s.62): who saw or changed which record, when, and why."""
