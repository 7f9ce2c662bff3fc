"""Fault and fuzz tests: each attack that once broke a promise, tried again."""
