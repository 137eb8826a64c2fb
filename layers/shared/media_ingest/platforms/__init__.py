"""Labelling platforms' formats: one module per platform owns its entries, limits and the
refusals of what it cannot carry. Pure: catalog items in, platform JSON/CSV out."""
