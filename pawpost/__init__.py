"""Pawpost's composition root: settings from the environment and the `pawpost` command."""
