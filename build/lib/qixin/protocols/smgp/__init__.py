"""SMGP 3.0 (China Telecom). The wire format lives in ``codec``."""
