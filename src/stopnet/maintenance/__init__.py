"""Operating a stopnet installation: backup and restore, retention and purge."""
