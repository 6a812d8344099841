"""Running and checking a deployment: logging, doctor checks, private dev servers, the demo."""
