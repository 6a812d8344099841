"""The `broadcast-bot` command line."""
