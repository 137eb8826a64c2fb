"""Consumers of registrations: what the ingest function publishes about the catalog's changes
(changes.py) and the sinks that bring a platform in line with them (label_studio.py), run by
their own function from their own queue. Never a branch of the ingest path."""
