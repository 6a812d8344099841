"""CSV files into broadcasts: reading, phone numbers, row checks, batched writes, reports."""

from broadcasts.imports.importer import DEFAULT_MAX_BYTES, ImportSummary, import_csv

__all__ = ["DEFAULT_MAX_BYTES", "ImportSummary", "import_csv"]
