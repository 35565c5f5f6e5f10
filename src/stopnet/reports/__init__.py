"""Situation reports (daily, end of operation) and exports of cases and seizures."""
