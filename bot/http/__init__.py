"""The HTTP entry point: the ASGI app and its routes (Slack, WhatsApp webhooks, health, metrics)."""
