"""Lightning callbacks and plugins of ecglit's training: exact resume (random streams, pending scheduler
step, where a run resumed from) and atomic checkpoint files."""
