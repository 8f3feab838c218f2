"""Aleph: a self-hosted AI-agent gateway daemon on Trio."""

__version__ = "0.1.0"
