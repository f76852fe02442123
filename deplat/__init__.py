"""deplat: keep a web app online when a hosting provider cuts it off."""

__version__ = "0.1.0"
