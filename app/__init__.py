"""Tremplin: the shared API of insertion paths to building-caretaker jobs."""
