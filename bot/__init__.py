"""Adapters around the domain: the Slack app, the HTTP server and the CLI."""
