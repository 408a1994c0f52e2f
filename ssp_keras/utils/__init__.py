"""Small helpers shared by the library: atomic file writes, input-safety checks."""
