"""Scoring and reporting: metrics (conlleval and strict IOB2), significance, evaluation of runs, models and files,
prediction, and the paper tables. Everything that turns predictions into numbers lives here."""
