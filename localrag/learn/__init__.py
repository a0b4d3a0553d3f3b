"""Learning from use: online feedback (feedback.py)."""
