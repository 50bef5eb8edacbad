"""Centralised logging (see logger_config.py)."""
