"""Archive drops (zip, tar, tar.gz): which members become drops and which are refused
(rules.py), and the extract function's work per archive (extractor.py). Never an AWS client."""
