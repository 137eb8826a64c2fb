"""The ingest function's work: one event to one outcome (ingestor.py), what a conditional put
means (registration.py), one SQS batch with idempotency and manifest appends (batch_runner.py)."""
