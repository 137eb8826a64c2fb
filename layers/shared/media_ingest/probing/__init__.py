"""Probing untrusted objects without downloading them: the first range decides the kind
(sniffer.py), then only what that kind needs is read (ffprobe, image and DICOM headers,
the MP4 index). prober.py orchestrates; nothing here writes anything."""
