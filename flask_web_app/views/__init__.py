"""Blueprints: pages (/, /dashboard), auth (/register, /login, /logout, /account), api (/api/..., /healthz)."""
