"""The operator commands' AWS access: reads of the catalog, groups and manifests, the
queues (send, receive, depths), the stack's outputs and its function's configuration."""
