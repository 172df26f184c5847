"""qixin (企信): enterprise SMS platform."""

__version__ = "0.1.0"
