"""Placeholder: filled in by the teacher-serving work (issue 3)."""
