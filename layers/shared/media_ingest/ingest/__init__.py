"""The ingest function's work: one event to one recorded outcome (ingestor.py), what a
conditional put means and who appends its entry (registration.py), one SQS batch decided
concurrently with one manifest append per dataset (batch_runner.py)."""
