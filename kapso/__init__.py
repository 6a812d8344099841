"""WhatsApp through Kapso or Meta: HTTP client, templates, error codes and a local sandbox."""
