"""Placeholder: this module's commands are being written."""
