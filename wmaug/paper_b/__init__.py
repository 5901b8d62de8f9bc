"""Paper B, balanced replay and a pessimistic Q-ensemble: CQL agents pre-trained offline in blocks, fine-tuned
online with an ensemble SAC while a density-ratio network drives prioritised replay of offline samples. Its
pre-training and fine-tuning jobs, samplers, prioritised buffer, density-ratio network, analyses and figures."""
