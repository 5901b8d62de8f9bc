"""Datasets and what carries them: transitions, replay buffers, per-cell samples and their normalisation, Minari and
D4RL file I/O, and the D4RL protocol's rollouts. It imports the core only."""
