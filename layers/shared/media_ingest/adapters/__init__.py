"""AWS adapters: the only modules that call AWS. Each takes an optional boto3 client."""
