"""The Slack adapter: Bolt app, listeners, Block Kit builders, the card and its thread."""
