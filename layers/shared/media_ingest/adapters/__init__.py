"""Adapters: the only runtime code that calls AWS, one module per resource. Each takes an
optional boto3 client (clients.py makes the shared ones lazily)."""
