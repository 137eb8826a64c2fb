"""Reconciliation: proving nothing was missed, by comparing a bucket with the catalog without
reading object bytes (rules.py decides, snapshot.py holds the catalog's side, runner.py runs
it resumably for the `reconcile` command and the scheduled function)."""
