"""Reliability and security suite (issue 7): vendor faults, leaks, hostile clients, fuzzing, secrets."""
