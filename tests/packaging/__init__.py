"""Tests of how the project is built and installed."""
