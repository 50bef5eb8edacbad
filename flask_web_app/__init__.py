"""The Flask dashboard: live prices, charts and accounts (create_app in app.py)."""
