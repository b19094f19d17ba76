"""DTN IQFeed protocol: pure parsing/formatting functions (history lines, trade conditions)."""
