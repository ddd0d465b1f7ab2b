"""Library of scripts/chart-check.py, split by responsibility."""
