"""The broadcast domain: models, lifecycle, recipients, metrics and the service layer."""
