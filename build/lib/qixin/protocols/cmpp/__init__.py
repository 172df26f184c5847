"""CMPP 2.0 / 3.0 (China Mobile). The wire format lives in ``codec``."""
