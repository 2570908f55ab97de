"""Comparisons of training configurations with seeds: the study's photos, runs and statistics."""
