"""Reliability and security suite (issue 7): faults, leaks, hostile clients, fuzzing, secrets."""
