"""Groups: image groups, image sequences and DICOM series assembled from files that arrive
one event at a time. rules.py decides (pure), membership.py joins, sealing.py seals and writes."""
