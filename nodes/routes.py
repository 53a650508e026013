"""Server routes under /pose_factory/ (filled in by the nodes issue's routes work)."""
