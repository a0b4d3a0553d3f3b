"""Answers: context building, citation checking and the ask pipeline."""
