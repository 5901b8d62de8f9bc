"""Paper A, world-model augmentation: TD3+BC offline on a small sample whose batches a VAE world model augments,
then online TD3 from the pre-trained actor and critic. Its cell pipeline, augmentation, world model, analyses
(held-out world-model error, Fig 5's critic traces) and figures."""
