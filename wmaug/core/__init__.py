"""The shared core both papers stand on: the config and its schema, file I/O, errors, provenance, SIGTERM handling,
the training-loop runner, environments, evaluation and networks. It imports nothing of either paper."""
