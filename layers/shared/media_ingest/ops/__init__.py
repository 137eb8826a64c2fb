"""Operator tooling: the `media-ingest` CLI and what only it runs (status, exports, backfill,
redrive, annotation QA), with its own AWS adapters. Never shipped in the Lambda layer, and
never imported by a function."""
