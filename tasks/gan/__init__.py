"""Conditional image generation with SaBN: GAN models, losses, generator EMA and checkpoint loading."""
