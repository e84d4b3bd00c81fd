"""Rebuild artifacts/ from the corpus: `python -m train --data PATH --out artifacts`."""
