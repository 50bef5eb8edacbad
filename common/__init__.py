"""Pieces every role shares and no role owns: the start-up of a long-running
service, the cron loop, and the outgoing channels (SMTP). Below streaming/,
batch/, articles/ and flask_web_app/; never imports any of them."""
