"""The benchmark's scenarios, one module per group; bench/run.py runs them in order."""
