"""Reporting: cases and their seizures, corrections, validation, bulk import."""
