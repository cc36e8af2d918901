"""The embedded AWS + Ground Truth runtime: run the whole workflow on one machine."""
