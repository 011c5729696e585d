"""Noise schedules and samplers shared by the diffusion-based restorers and their training."""
