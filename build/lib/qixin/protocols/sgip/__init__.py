"""SGIP 1.2 (China Unicom). The wire format lives in ``codec``."""
