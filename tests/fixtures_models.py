"""Fixtures that build or locate real models offline (tiny Llama, SmolLM2, MiniLM)."""
